"""What the facade hands out (metadata, versions, read results) and how records are encoded.

NamedTuples rather than dataclasses: importing dataclasses pulls in `inspect`,
which alone costs a cold `credwarden get` a fifth of its budget.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any, NamedTuple

from .secret import MASK, Secret
from .store import Record, rows
from .store.rows import COUNT, STR, TIME, list_of, map_of, opt
from .timeutil import MAX_SPAN_S

NS_META = "meta"
NS_KEK = "kek"
NS_CRED = "cred"
NS_VERSION = "ver"
NS_TOKEN = "token"  # noqa: S105 - a namespace: minted tokens cached by oauth/minted.py


def b64e(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def b64d(text: str) -> bytes:
    return base64.b64decode(text)


def dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def version_key(cred_id: str, version: int) -> str:
    return f"{cred_id}/{version:010d}"


STORE_SHAPE = rows.Shape(
    "store description",
    {"store_id": STR},
    {
        "created_at": TIME,
        "environments": list_of(STR),
        "format": COUNT,
        "protected": list_of(STR),
    },
    open=True,
)
"""The NS_META "store" record: the store's identity and its environments."""

WRAPPED_SHAPE = rows.Shape("wrapped key", {"wrapped": STR})
"""The NS_META "audit_key" record: the audit chain's key, wrapped by the master key."""


def store_info(body: bytes | str) -> dict[str, Any]:
    return STORE_SHAPE.decode(body, rows.record_name(NS_META, "store"))


CREDENTIAL_SHAPE = rows.Shape(
    "credential",
    {
        "id": STR,
        "address": STR,
        "kind": STR,
        "version": COUNT,
        "created_at": TIME,
        "updated_at": TIME,
        "rotated_at": TIME,
    },
    {
        "provider": opt(STR),
        "description": opt(STR),
        "owner": opt(STR),
        "tags": map_of(STR),
        "links": list_of(STR),
        "expires_at": opt(TIME),
        "rotate_every": opt(rows.bounded(1, MAX_SPAN_S)),
        "health_override": opt(STR),
    },
    key="address",
)

VERSION_SHAPE = rows.Shape(
    "version",
    {
        "version": COUNT,
        "created_at": TIME,
        "created_by": STR,
        "note": STR,
        "dek": STR,
        "secret": map_of(STR),
        "plain": map_of(STR),
    },
)


class CredentialRecord(NamedTuple):
    """A credential's metadata (plain: the store may see it) and the CAS revision it was read at."""

    id: str
    address: str
    kind: str
    version: int
    created_at: str
    updated_at: str
    rotated_at: str
    provider: str | None = None
    description: str | None = None
    owner: str | None = None
    tags: dict[str, str] = {}  # noqa: RUF012 - never mutated in place
    links: list[str] = []  # noqa: RUF012
    expires_at: str | None = None
    rotate_every: int | None = None
    health_override: str | None = None
    rev: int = 0

    @classmethod
    def new(cls, address: str, kind: str, now: str, **meta: Any) -> CredentialRecord:
        """Version 1 of a new credential, with a random id."""
        return cls(
            id=os.urandom(16).hex(),
            address=address,
            kind=kind,
            version=1,
            created_at=now,
            updated_at=now,
            rotated_at=now,
            **meta,
        )

    def to_bytes(self) -> bytes:
        d = self._asdict()
        d.pop("rev")
        return dumps(d)

    @classmethod
    def from_record(cls, rec: Record) -> CredentialRecord:
        """Decode the record stored under its address (StoreCorrupt if malformed)."""
        return cls(**CREDENTIAL_SHAPE.record(rec, NS_CRED), rev=rec.rev)


class VersionRecord(NamedTuple):
    """One version: the wrapped data key, secret fields as ciphertext, plain fields as text."""

    version: int
    created_at: str
    created_by: str
    note: str
    dek: str
    secret: dict[str, str]
    plain: dict[str, str]
    rev: int = 0

    def to_bytes(self) -> bytes:
        d = self._asdict()
        d.pop("rev")
        return dumps(d)

    @classmethod
    def from_record(cls, rec: Record) -> VersionRecord:
        """Decode a version stored under `<credential id>/<version>`."""
        where = rows.record_name(NS_VERSION, rec.key)
        return cls(**VERSION_SHAPE.decode(rec.body, where), rev=rec.rev)


class VersionInfo(NamedTuple):
    version: int
    created_at: str
    created_by: str
    note: str
    fields: list[str]
    current: bool

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


class CredentialInfo(NamedTuple):
    """Metadata, health and field names of a credential; secret fields appear masked."""

    address: str
    id: str
    kind: str
    version: int
    provider: str | None
    description: str | None
    owner: str | None
    tags: dict[str, str]
    links: list[str]
    created_at: str
    updated_at: str
    rotated_at: str
    expires_at: str | None
    rotate_every: int | None
    last_used_at: str | None
    health: str
    fields: dict[str, str | None]
    """Plain fields with their values; secret fields map to None."""

    def to_dict(self) -> dict[str, Any]:
        d = self._asdict()
        d["tags"], d["links"] = dict(self.tags), list(self.links)
        d["fields"] = {k: (MASK if v is None else v) for k, v in self.fields.items()}
        d["secret_fields"] = sorted(k for k, v in self.fields.items() if v is None)
        return d


class Credential(NamedTuple):
    """A read: the metadata plus every field, secrets wrapped in `Secret`."""

    info: CredentialInfo
    values: dict[str, Secret | str]

    def reveal(self) -> dict[str, str]:
        return {k: v.reveal() if isinstance(v, Secret) else v for k, v in self.values.items()}
