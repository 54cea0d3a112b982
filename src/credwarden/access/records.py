"""How principals and API tokens are stored: plain JSON records (only a token's hash is kept)."""

from __future__ import annotations

from typing import Any, Final, NamedTuple

from ..model import dumps
from ..store import Record, rows
from ..store.rows import COUNT, STR, TIME, list_of, opt

NS_PRINCIPAL: Final = "principal"
NS_APITOKEN: Final = "apitoken"
NS_GRANT: Final = "grant"
ACCESS_GEN: Final = "access"
"""The NS_META key bumped by every change to principals, tokens, grants or protection:
nodes compare it to know when to reload what they cached."""

PRINCIPAL_TYPES: Final = ("user", "workflow", "service")


PRINCIPAL_SHAPE = rows.Shape(
    "principal",
    {"name": STR, "type": STR},
    {"owner": opt(STR), "description": opt(STR), "created_at": STR, "created_by": STR},
    key="name",
)
TOKEN_SHAPE = rows.Shape(
    "API token",
    {"id": STR, "principal": STR, "salt": STR, "hash": STR, "created_at": STR, "created_by": STR},
    {
        "expires_at": opt(TIME),
        "revoked_at": opt(TIME),
        "description": opt(STR),
        "last_used_at": opt(TIME),
    },
    key="id",
)
GRANT_SHAPE = rows.Shape(
    "grant",
    {"id": STR, "principal": STR, "pattern": STR, "actions": list_of(STR)},
    {"role": opt(STR), "created_at": STR, "created_by": STR},
    key="id",
)
GEN_SHAPE = rows.Shape("access generation", {"gen": COUNT})


def grant_fields(rec: Record) -> dict[str, Any]:
    """A stored grant's fields, shape-checked (`Grant.from_dict` checks its pattern and actions)."""
    return GRANT_SHAPE.record(rec, NS_GRANT)


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
    def from_record(cls, rec: Record) -> PrincipalRecord:
        return cls(**PRINCIPAL_SHAPE.record(rec, NS_PRINCIPAL))


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
    def from_record(cls, rec: Record) -> TokenRecord:
        return cls(**TOKEN_SHAPE.record(rec, NS_APITOKEN))

    def __repr__(self) -> str:
        return f"TokenRecord(id={self.id!r}, principal={self.principal!r})"
