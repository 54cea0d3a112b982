"""The security barrier: every secret byte on its way to or from the store passes here.

It holds the unwrapped key-encryption keys (KEKs, by term) and the master key that wraps
them, and does the envelope work for the layers above: a fresh data key per credential
version (wrapped under the active KEK term), fields sealed under it with associated data
that binds each to its credential, version and field name; sealed blobs for other records
(a pending OAuth flow's verifier); new KEK terms and the re-wrapping of data keys. KEK
terms added by another process are picked up from the store when first met.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..errors import CryptoError, MasterKeyError
from ..model import NS_KEK, b64e, dumps
from ..store import Record, Tx, rows
from ..store.rows import COUNT, STR, TIME
from ..timeutil import iso, utcnow
from .envelope import (
    Keyring,
    data_cipher,
    dek_aad,
    field_aad,
    kek_aad,
    new_key,
    open_field,
    seal_field,
    unwrap_with_master,
    wrap_with_master,
)

Cipher = Any
"""An unwrapped data key, ready to seal and open (cryptography's AESGCM)."""


def audit_aad(store_id: str) -> bytes:
    """What the audit chain's key is bound to when wrapped by the master key."""
    return f"cw1|audit|{store_id}".encode()


def kek_body(master: bytes, store_id: str, term: int, kek: bytes) -> bytes:
    """The stored record of a KEK term: the key wrapped by the master key."""
    wrapped = wrap_with_master(master, kek, kek_aad(store_id, term))
    return dumps({"term": term, "created_at": iso(utcnow()), "wrapped": b64e(wrapped)})


def term_key(term: int) -> str:
    """The record key of a KEK term (zero-padded so that keys sort by term)."""
    return f"{term:08d}"


KEK_SHAPE = rows.Shape("key-encryption key", {"term": COUNT, "created_at": TIME, "wrapped": STR})


def decode_kek(rec: Record) -> dict[str, Any]:
    """A stored KEK term (StoreCorrupt if malformed or filed under another term)."""
    where = rows.record_name(NS_KEK, rec.key)
    k = KEK_SHAPE.decode(rec.body, where)
    if rec.key != term_key(k["term"]):
        raise rows.corrupt(where, "it holds another key term")
    return k


def decode_keks(recs: Iterable[Record]) -> list[dict[str, Any]]:
    keks = [decode_kek(r) for r in recs]
    if not keks:
        raise rows.corrupt("the store's key table", "it holds no key-encryption key")
    return keks


def b64d(text: Any, what: str = "a stored ciphertext") -> bytes:
    """Strict base64 of a ciphertext read from the store (CryptoError when it is not)."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise CryptoError(
            f"{what} is malformed (not base64)",
            hint="run `credwarden audit verify` and restore the database from a backup",
        ) from None


class Barrier:
    """The KEKs of one store, unwrapped, and the envelope operations over them."""

    __slots__ = ("_keyring", "_master", "key_source", "store_id")

    def __init__(self, master: bytes, store_id: str, keks: Iterable[dict[str, Any]], source: str):
        """`keks`: decoded KEK records (`decode_keks`), at least one."""
        keks = list(keks)
        self._master = master
        self.store_id = store_id
        self.key_source = source
        opened: dict[int, bytes] = {}
        refused: list[int] = []
        for k in keks:
            try:
                opened[k["term"]] = self._unwrap_kek(k)
            except MasterKeyError:
                refused.append(k["term"])
        if refused and not opened:
            self._unwrap_kek(keks[0])  # no term opens: the master key is the wrong one
        if refused:  # the key opens other terms: these records were altered
            raise CryptoError(
                f"the stored key-encryption key term {refused[0]} fails to decrypt with a master"
                " key that opens the others: the record was altered",
                hint="run `credwarden audit verify` and restore the database from a backup",
            )
        self._keyring = Keyring(opened, max(k["term"] for k in keks))

    def __repr__(self) -> str:
        return f"Barrier(store_id={self.store_id!r}, {self._keyring!r})"

    def _unwrap_kek(self, k: Mapping[str, Any]) -> bytes:
        return unwrap_with_master(
            self._master,
            b64d(k["wrapped"]),
            kek_aad(self.store_id, k["term"]),
            source=self.key_source,
        )

    def unwrap_with_master(self, wrapped: bytes, aad: bytes, what: str) -> bytes:
        """A key wrapped directly by the master key (the audit chain's). The master key has
        opened the KEKs by now, so a failure here means the record was altered."""
        try:
            return unwrap_with_master(self._master, wrapped, aad, source=self.key_source)
        except MasterKeyError:
            raise CryptoError(
                f"{what} fails to decrypt with the master key that opens the store's key terms:"
                " the record was altered",
                hint="run `credwarden audit verify` and restore the database from a backup",
            ) from None

    @property
    def terms(self) -> list[int]:
        return self._keyring.terms

    @property
    def active_term(self) -> int:
        return self._keyring.active_term

    # -- KEK terms -------------------------------------------------------------------------

    def reload(self, tx: Tx) -> None:
        """Pick up KEK terms added by another process since this one opened the store."""
        for k in decode_keks(tx.list(NS_KEK)):
            if k["term"] not in self._keyring.terms:
                self._keyring.add(k["term"], self._unwrap_kek(k))
                self._keyring.active_term = max(self._keyring.active_term, k["term"])

    def _current(self, tx: Tx) -> None:
        """Before wrapping: make sure the newest stored term is the active one."""
        newest = decode_keks(tx.list(NS_KEK))[-1]["term"]
        if newest > self._keyring.active_term:
            self.reload(tx)

    def add_term(self, tx: Tx) -> tuple[int, bytes]:
        """Store a new KEK term (not yet active here: `activate` it once committed)."""
        self.reload(tx)
        term = max(self._keyring.terms) + 1
        kek = new_key()
        tx.put(NS_KEK, term_key(term), kek_body(self._master, self.store_id, term, kek), rev=0)
        return term, kek

    def activate(self, term: int, kek: bytes) -> None:
        """Wrap new data keys under `term` from now on."""
        self._keyring.add(term, kek)
        self._keyring.active_term = term

    def rewrap(self, wrapped_b64: str, cred_id: str, version: int, term: int) -> str | None:
        """A version's data key wrapped again under `term`; None when it already is."""
        wrapped = b64d(wrapped_b64)
        if Keyring.term_of(wrapped) >= term:
            return None
        aad = dek_aad(cred_id, version)
        return b64e(self._keyring.wrap(self._keyring.unwrap(wrapped, aad), aad))

    # -- credential versions -----------------------------------------------------------------

    def data_key(self, tx: Tx, cred_id: str, version: int, wrapped_b64: str) -> Cipher:
        """A version's data key, unwrapped."""
        wrapped = b64d(wrapped_b64)
        if Keyring.term_of(wrapped) not in self._keyring.terms:
            self.reload(tx)
        return data_cipher(self._keyring.unwrap(wrapped, dek_aad(cred_id, version)))

    def seal_fields(
        self,
        tx: Tx,
        cred_id: str,
        version: int,
        fields: Mapping[str, str],
        is_secret: Callable[[str], bool],
    ) -> tuple[str, dict[str, str], dict[str, str]]:
        """(wrapped data key, sealed secret fields, plain fields) of a new version."""
        self._current(tx)
        dek_raw = new_key()
        dek = data_cipher(dek_raw)
        secret, plain = {}, {}
        for name, value in fields.items():
            if is_secret(name):
                sealed = seal_field(dek, value.encode(), field_aad(cred_id, version, name))
                secret[name] = b64e(sealed)
            else:
                plain[name] = value
        wrapped = self._keyring.wrap(dek_raw, dek_aad(cred_id, version))
        return b64e(wrapped), secret, plain

    @staticmethod
    def open_fields(
        dek: Cipher, cred_id: str, version: int, sealed: Mapping[str, str], names: Iterable[str]
    ) -> dict[str, str]:
        """The named sealed fields of a version, decrypted with its data key."""
        out = {}
        for name in names:
            if name not in sealed:
                raise CryptoError(
                    f"the secret field {name!r} of version {version} is missing from the store",
                    hint="run `credwarden audit verify` and restore the database from a backup",
                )
            plain = open_field(dek, b64d(sealed[name]), field_aad(cred_id, version, name))
            out[name] = plain.decode()  # authenticated: what was sealed, so UTF-8
        return out

    # -- other sealed records ----------------------------------------------------------------

    def seal_blob(self, tx: Tx, aad: str, plaintext: bytes) -> dict[str, str]:
        """Encrypt something that is not a credential version under a fresh data key wrapped
        by the active KEK term; `aad` binds it to where it is stored."""
        self._current(tx)
        dek_raw = new_key()
        sealed = seal_field(data_cipher(dek_raw), plaintext, f"cw1|blob|{aad}".encode())
        wrapped = self._keyring.wrap(dek_raw, f"cw1|blob-dek|{aad}".encode())
        return {"dek": b64e(wrapped), "sealed": b64e(sealed)}

    def open_blob(self, tx: Tx, blob: Mapping[str, str], aad: str) -> bytes:
        """The plaintext sealed by `seal_blob` with the same `aad` (CryptoError otherwise)."""
        try:
            wrapped, sealed = b64d(blob["dek"]), b64d(blob["sealed"])
        except (KeyError, TypeError, CryptoError):
            raise CryptoError("a sealed record is malformed") from None
        if Keyring.term_of(wrapped) not in self._keyring.terms:
            self.reload(tx)
        dek = self._keyring.unwrap(wrapped, f"cw1|blob-dek|{aad}".encode())
        return open_field(data_cipher(dek), sealed, f"cw1|blob|{aad}".encode())


__all__ = [
    "KEK_SHAPE",
    "Barrier",
    "Cipher",
    "audit_aad",
    "b64d",
    "decode_kek",
    "decode_keks",
    "kek_body",
    "term_key",
]
