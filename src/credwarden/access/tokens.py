"""API tokens: random, prefixed so secret scanners recognise them, kept only as a salted hash.

`cwt_<id>_<secret>`: the id (12 hex) names the stored record, so a check is one
lookup and one SHA-256; the secret is 32 random bytes. A salted SHA-256 (not a
slow password hash) is right here: the secret has 256 bits of entropy, so there
is nothing to brute-force, and the check sits on every API request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from typing import Final, NamedTuple

PREFIX: Final = "cwt_"
TOKEN_RE: Final = re.compile(r"cwt_([0-9a-f]{12})_([A-Za-z0-9_-]{43})\Z")
"""What a credwarden API token looks like (for scanners and for a quick refusal)."""


class NewToken(NamedTuple):
    id: str
    text: str  # shown once, never stored
    salt: str
    hash: str

    def __repr__(self) -> str:
        return f"NewToken(id={self.id!r}, text='cwt_***')"


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + secret.encode()).hexdigest()


def new_token() -> NewToken:
    token_id = os.urandom(6).hex()
    secret = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    salt = os.urandom(16).hex()
    return NewToken(token_id, f"{PREFIX}{token_id}_{secret}", salt, _digest(salt, secret))


def split_token(text: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed token, else None."""
    m = TOKEN_RE.match(text) if isinstance(text, str) and len(text) < 128 else None
    return (m.group(1), m.group(2)) if m else None


def secret_matches(salt: str, expected_hash: str, secret: str) -> bool:
    """Constant-time comparison of the stored hash with the presented secret's."""
    return hmac.compare_digest(_digest(salt, secret), expected_hash)
