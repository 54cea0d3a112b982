"""AES-256-GCM envelope encryption: a data key per version, wrapped by a KEK term, wrapped by
the master key.

Every ciphertext starts with its format version; a wrapped data key also names
its KEK term, so rotating the KEK needs no migration. The associated data binds
each ciphertext to where it belongs (store, credential id, version, field):
a ciphertext copied to another row fails to open.
"""

from __future__ import annotations

import os
import struct
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import CryptoError, MasterKeyError

FORMAT_V1: Final = 1
KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
_TERM = struct.Struct(">BI")


def new_key() -> bytes:
    """A fresh random 256-bit key."""
    return os.urandom(KEY_BYTES)


def _seal(key: AESGCM, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + key.encrypt(nonce, plaintext, aad)


_TAG_BYTES: Final = 16


def _open(key: AESGCM, blob: bytes, aad: bytes) -> bytes:
    if len(blob) < NONCE_BYTES + _TAG_BYTES:  # else AESGCM refuses the nonce with a ValueError
        raise InvalidTag
    return key.decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)


def kek_aad(store_id: str, term: int) -> bytes:
    return f"cw1|kek|{store_id}|{term}".encode()


def dek_aad(cred_id: str, version: int) -> bytes:
    return f"cw1|dek|{cred_id}|{version}".encode()


def field_aad(cred_id: str, version: int, field: str) -> bytes:
    return f"cw1|field|{cred_id}|{version}|{field}".encode()


def wrap_with_master(master: bytes, secret: bytes, aad: bytes) -> bytes:
    """Encrypt a key (KEK, audit key) under the master key."""
    return bytes([FORMAT_V1]) + _seal(AESGCM(master), secret, aad)


def unwrap_with_master(master: bytes, blob: bytes, aad: bytes, *, source: str) -> bytes:
    """Decrypt a key wrapped by `wrap_with_master`; a wrong master key is a MasterKeyError."""
    if not blob or blob[0] != FORMAT_V1:
        raise CryptoError("a wrapped key has an unknown format version; is this store newer?")
    try:
        return _open(AESGCM(master), blob[1:], aad)
    except InvalidTag:
        raise MasterKeyError(
            f"the master key from {source} does not open this store",
            hint="use the key this store was initialised with (CREDWARDEN_MASTER_KEY,"
            " CREDWARDEN_MASTER_KEY_FILE or the key file made by `credwarden init`); if it is"
            " that key, the store's key record was altered: restore it from a backup",
        ) from None


class Keyring:
    """The unwrapped KEKs by term; wraps data keys under the active term, unwraps under any."""

    __slots__ = ("_cipher", "active_term")

    def __init__(self, keks: dict[int, bytes], active_term: int) -> None:
        if active_term not in keks:
            raise CryptoError("the active key-encryption key is missing from the store")
        self._cipher = {term: AESGCM(key) for term, key in keks.items()}
        self.active_term = active_term

    def __repr__(self) -> str:
        return f"Keyring(terms={sorted(self._cipher)}, active={self.active_term})"

    @property
    def terms(self) -> list[int]:
        return sorted(self._cipher)

    def add(self, term: int, key: bytes) -> None:
        self._cipher[term] = AESGCM(key)

    def wrap(self, dek: bytes, aad: bytes) -> bytes:
        """Wrap a data key under the active term: format | term | nonce | ciphertext."""
        term = self.active_term
        return _TERM.pack(FORMAT_V1, term) + _seal(self._cipher[term], dek, aad)

    @staticmethod
    def term_of(wrapped: bytes) -> int:
        if len(wrapped) < _TERM.size:
            raise CryptoError(
                "a stored data key is truncated",
                hint="run `credwarden audit verify` and restore the database from a backup",
            )
        fmt, term = _TERM.unpack_from(wrapped)
        if fmt != FORMAT_V1:
            raise CryptoError("a data key has an unknown format version; is this store newer?")
        return int(term)

    def unwrap(self, wrapped: bytes, aad: bytes) -> bytes:
        term = self.term_of(wrapped)
        cipher = self._cipher.get(term)
        if cipher is None:
            raise CryptoError(f"a data key is wrapped under key term {term}, which is unknown")
        try:
            return _open(cipher, wrapped[_TERM.size :], aad)
        except InvalidTag:
            raise CryptoError(
                "a data key failed to decrypt: the record was altered or moved",
                hint="run `credwarden audit verify` and restore the database from a backup",
            ) from None


def seal_field(dek: AESGCM, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt one field value under its version's data key."""
    return bytes([FORMAT_V1]) + _seal(dek, plaintext, aad)


def open_field(dek: AESGCM, blob: bytes, aad: bytes) -> bytes:
    if not blob or blob[0] != FORMAT_V1:
        raise CryptoError("a field has an unknown format version; is this store newer?")
    try:
        return _open(dek, blob[1:], aad)
    except InvalidTag:
        raise CryptoError(
            "a secret field failed to decrypt: the record was altered or moved",
            hint="run `credwarden audit verify` and restore the database from a backup",
        ) from None


def data_cipher(dek: bytes) -> AESGCM:
    if len(dek) != KEY_BYTES:  # only an authenticated unwrap gets here: never in practice
        raise CryptoError("a data key has the wrong length")
    return AESGCM(dek)
