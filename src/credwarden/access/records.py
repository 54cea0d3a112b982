"""How principals and API tokens are stored: plain JSON records (only a token's hash is kept)."""

from __future__ import annotations

import json
from typing import Any, Final, NamedTuple

from ..model import dumps

NS_PRINCIPAL: Final = "principal"
NS_APITOKEN: Final = "apitoken"
NS_GRANT: Final = "grant"
ACCESS_GEN: Final = "access"
"""The NS_META key bumped by every change to principals, tokens, grants or protection:
nodes compare it to know when to reload what they cached."""

PRINCIPAL_TYPES: Final = ("user", "workflow", "service")


class PrincipalRecord(NamedTuple):
    name: str
    type: str
    owner: str | None = None
    description: str | None = None
    created_at: str = ""
    created_by: str = ""

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()

    def to_bytes(self) -> bytes:
        return dumps(self._asdict())

    @classmethod
    def from_bytes(cls, body: bytes) -> PrincipalRecord:
        return cls(**json.loads(body))


class TokenRecord(NamedTuple):
    id: str
    principal: str
    salt: str
    hash: str
    created_at: str
    created_by: str
    expires_at: str | None = None
    revoked_at: str | None = None
    description: str | None = None
    last_used_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """What may be shown: never the salt or hash."""
        d = self._asdict()
        del d["salt"], d["hash"]
        return d

    def to_bytes(self) -> bytes:
        return dumps(self._asdict())

    @classmethod
    def from_bytes(cls, body: bytes) -> TokenRecord:
        return cls(**json.loads(body))

    def __repr__(self) -> str:
        return f"TokenRecord(id={self.id!r}, principal={self.principal!r})"
