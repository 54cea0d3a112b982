"""The security barrier: every secret byte on its way to or from the store passes here.

It holds the unwrapped key-encryption keys (KEKs, by term) and the master key that wraps
them, and does the envelope work for the layers above: a fresh data key per credential
version (wrapped under the active KEK term), fields sealed under it with associated data
that binds each to its credential, version and field name; sealed blobs for other records
(a pending OAuth flow's verifier); new KEK terms and the re-wrapping of data keys. KEK
terms added by another process are picked up from the store when first met.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..model import NS_KEK, b64d, b64e, dumps
from ..store import Tx
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


class Barrier:
    """The KEKs of one store, unwrapped, and the envelope operations over them."""

    __slots__ = ("_keyring", "_master", "key_source", "store_id")

    def __init__(self, master: bytes, store_id: str, keks: Iterable[dict[str, Any]], source: str):
        keks = list(keks)
        self._master = master
        self.store_id = store_id
        self.key_source = source
        self._keyring = Keyring(
            {k["term"]: self._unwrap_kek(k) for k in keks}, max(k["term"] for k in keks)
        )

    def __repr__(self) -> str:
        return f"Barrier(store_id={self.store_id!r}, {self._keyring!r})"

    def _unwrap_kek(self, k: Mapping[str, Any]) -> bytes:
        return unwrap_with_master(
            self._master,
            b64d(k["wrapped"]),
            kek_aad(self.store_id, k["term"]),
            source=self.key_source,
        )

    def unwrap_with_master(self, wrapped: bytes, aad: bytes) -> bytes:
        """A key wrapped directly by the master key (the audit chain's)."""
        return unwrap_with_master(self._master, wrapped, aad, source=self.key_source)

    @property
    def terms(self) -> list[int]:
        return self._keyring.terms

    @property
    def active_term(self) -> int:
        return self._keyring.active_term

    # -- KEK terms -------------------------------------------------------------------------

    def reload(self, tx: Tx) -> None:
        """Pick up KEK terms added by another process since this one opened the store."""
        for r in tx.list(NS_KEK):
            k = json.loads(r.body)
            if k["term"] not in self._keyring.terms:
                self._keyring.add(k["term"], self._unwrap_kek(k))
                self._keyring.active_term = max(self._keyring.active_term, k["term"])

    def _current(self, tx: Tx) -> None:
        """Before wrapping: make sure the newest stored term is the active one."""
        newest = tx.list(NS_KEK)[-1].key
        if int(newest) > self._keyring.active_term:
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
        return {
            name: open_field(dek, b64d(sealed[name]), field_aad(cred_id, version, name)).decode()
            for name in names
        }

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
        from ..errors import CryptoError

        try:
            wrapped, sealed = b64d(blob["dek"]), b64d(blob["sealed"])
        except (KeyError, TypeError, ValueError):
            raise CryptoError("a sealed record is malformed") from None
        if Keyring.term_of(wrapped) not in self._keyring.terms:
            self.reload(tx)
        dek = self._keyring.unwrap(wrapped, f"cw1|blob-dek|{aad}".encode())
        return open_field(data_cipher(dek), sealed, f"cw1|blob|{aad}".encode())


__all__ = ["Barrier", "Cipher", "audit_aad", "kek_body", "term_key"]
