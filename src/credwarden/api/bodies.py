"""The request bodies and query types of the REST API: every bound the server enforces is
stated here, so that the OpenAPI document tells clients (and contract testers) exactly."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict, JsonValue

from ..access.grants import ACTIONS, ROLES
from ..kinds import kind_names
from ..lifecycle.health import HEALTH_STATES
from ..timeutil import MAX_SPAN_S
from .calls import SEG

Days = Annotated[int, Query(ge=1, le=MAX_SPAN_S // 86400, description="A look-back in days.")]
Within = Annotated[int, Query(ge=1, le=MAX_SPAN_S, description="Seconds ahead.")]
QuerySeg = Annotated[str | None, Query(pattern=SEG, max_length=64)]

_SEGMENT = SEG[1:-1]
ADDRESS = f"^{_SEGMENT}/{_SEGMENT}/{_SEGMENT}$"
"""environment/service/name, as `address.py` parses it."""
_PATTERN_SEGMENT = r"[a-z0-9*?][a-z0-9*?._-]{0,63}"
PATTERN = f"^{_PATTERN_SEGMENT}(/{_PATTERN_SEGMENT}){{0,2}}$"
"""An address pattern with `*`/`?` wildcards: `prod`, `prod/stripe`, `*/github/*`."""
KIND = "^(" + "|".join(kind_names()) + ")$"
ACTION = "^(" + "|".join(sorted(ACTIONS)) + ")$"
ROLE = "^(" + "|".join(sorted(ROLES)) + ")$"
HEALTH = "^(" + "|".join(HEALTH_STATES) + ")$"
Address = Annotated[str, Field(pattern=ADDRESS, max_length=200)]
Link = Annotated[str, Field(pattern=r"^https?://", max_length=2000)]
TagKey = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")]
Tags = Annotated[
    dict[TagKey, Annotated[str, Field(max_length=256)]],
    Field(json_schema_extra={"additionalProperties": False}),
]
When = Annotated[
    str,
    Field(
        max_length=64,
        json_schema_extra={"anyOf": [{"format": "date"}, {"format": "date-time"}]},
        description="an ISO date (the end of that day, UTC) or timestamp",
    ),
]
VarName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")]
Pattern = Annotated[str, Field(pattern=PATTERN, max_length=200)]
Actions = list[Annotated[str, Field(pattern=ACTION)]]

MAX_BODY = 1 << 20
# Rotation periods are seconds; bounded so that date arithmetic on them (health) cannot
# overflow: a 10**30 would be a 500 on every later describe and listing.
Env = Annotated[str, Field(pattern=SEG)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _required_fields() -> JsonDict:
    """JSON Schema: for each kind, its required fields present in `fields`."""
    from ..kinds import get_kind

    branches: list[JsonValue] = []
    for name in kind_names():
        kind = get_kind(name)
        needed: list[JsonValue] = [f.name for f in kind.fields if f.required]
        fields: JsonDict = {}
        if needed:
            fields["required"] = needed
        if not kind.open_fields:  # a closed kind takes only its own fields
            known: list[JsonValue] = [f.name for f in kind.fields]
            fields["propertyNames"] = {"enum": known}
        branch: JsonDict = {"properties": {"kind": {"const": name}, "fields": fields}}
        if needed:
            branch["required"] = ["fields"]
        branches.append(branch)
    return {"anyOf": branches}


class NewCredential(_Body):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_required_fields())

    address: Address
    kind: str = Field(pattern=KIND)
    fields: dict[str, Annotated[str, Field(max_length=65536)]] = Field(default_factory=dict)
    provider: str | None = Field(default=None, max_length=100)
    description: str | None = Field(default=None, max_length=2000)
    owner: str | None = Field(default=None, max_length=2000)
    tags: Tags = Field(default_factory=dict)
    links: list[Link] = Field(default_factory=list)
    expires_at: When | None = None
    rotate_every: int | None = Field(default=None, gt=0, le=MAX_SPAN_S)


CHANGE_METADATA = (
    "description",
    "owner",
    "provider",
    "tags",
    "add_tags",
    "links",
    "add_links",
    "expires_at",
    "rotate_every",
)
"""The metadata an update may change (None: not given)."""


CLEARABLE = ("description", "owner", "provider", "expires_at", "rotate_every")
Clearable = Annotated[str, Field(pattern="^(" + "|".join(CLEARABLE) + ")$")]


def _any_of(*required: str, non_empty: tuple[str, ...] = ()) -> JsonDict:
    """JSON Schema: at least one of these present and not null (and, for `non_empty`, not
    empty), as the facade requires (it answers "nothing to ..." otherwise)."""

    def branch(name: str) -> JsonDict:
        shape: JsonDict = {"not": {"type": "null"}}
        if name in non_empty:
            shape = {"minProperties": 1} if name in ("fields", "add_tags") else {"minItems": 1}
        return {"required": [name], "properties": {name: shape}}

    return {"anyOf": [branch(n) for n in required]}


class CredentialChange(_Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=_any_of(
            "fields",
            "unset",
            "main",
            *CHANGE_METADATA,
            "clear",
            non_empty=("fields", "unset", "clear", "add_tags", "add_links"),
        ),
    )

    fields: dict[str, Annotated[str, Field(max_length=65536)]] = Field(default_factory=dict)
    unset: list[str] = Field(default_factory=list)
    expected_version: int | None = None
    note: str = Field(default="updated", max_length=200)
    main: str | None = Field(
        default=None, max_length=65536, description="a new value of the kind's main field"
    )
    description: str | None = Field(default=None, max_length=2000)
    owner: str | None = Field(default=None, max_length=2000)
    provider: str | None = Field(default=None, max_length=100)
    tags: Tags | None = None
    add_tags: Tags | None = None
    links: list[Link] | None = None
    add_links: list[Link] | None = None
    expires_at: When | None = None
    rotate_every: int | None = Field(default=None, gt=0, le=MAX_SPAN_S)
    clear: list[Clearable] = Field(
        default_factory=list, description="metadata to clear: description, owner, ..."
    )


class Rollback(_Body):
    to_version: int = Field(ge=1)
    expected_version: int | None = None


class TokenRequest(_Body):
    scopes: list[Annotated[str, Field(max_length=500)]] = Field(default_factory=list)
    subject: str | None = Field(default=None, max_length=320)
    min_ttl: int = Field(default=60, ge=0, le=86400)
    rejected: str | None = Field(
        default=None, max_length=16384, description="a token an API answered 401 to"
    )


class LiveTest(_Body):
    vars: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(default=15.0, gt=0, le=120)


class ImportRequest(_Body):
    entries: list[tuple[VarName, Annotated[str, Field(min_length=1, max_length=65536)]]] = Field(
        min_length=1, max_length=10000
    )
    env: Env
    service: Env
    overwrite: bool = False


class NewPrincipal(_Body):
    name: str = Field(pattern=SEG)
    type: str = Field(default="workflow", pattern="^(user|workflow|service)$")
    owner: str | None = Field(default=None, max_length=500)
    description: str | None = Field(default=None, max_length=500)
    role: str | None = Field(default=None, pattern=ROLE)
    pattern: str = Field(default="*", pattern=PATTERN, max_length=200)


class NewToken(_Body):
    expires_in: int | None = Field(default=None, gt=0, le=10 * 365 * 86400)
    description: str | None = Field(default=None, max_length=500)


class NewGrant(_Body):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {"required": ["actions"], "properties": {"actions": {"type": "array"}}},
                {"required": ["role"], "properties": {"role": {"type": "string"}}},
            ]
        },
    )

    principal: str = Field(pattern=SEG)
    pattern: Pattern
    actions: Actions | None = Field(default=None, min_length=1)
    role: str | None = Field(default=None, pattern=ROLE)


class GrantRevocation(_Body):
    principal: str = Field(pattern=SEG)
    pattern: Pattern
    actions: Actions | None = Field(default=None, min_length=1)


class NewEnvironment(_Body):
    name: str = Field(pattern=SEG)


class Protection(_Body):
    protected: bool = True


class ConnectStart(_Body):
    provider: str = Field(max_length=100)
    client: Address = Field(description="the oauth2_client credential's address")
    scopes: list[Annotated[str, Field(max_length=500)]] = Field(
        default_factory=list, max_length=100
    )
    vars: dict[str, Annotated[str, Field(max_length=256)]] = Field(
        default_factory=dict, description="the provider's template vars (shop, tenant, ...)"
    )
