"""Least-privilege grants, evaluated purely: one place decides who may do what to which address.

A grant gives a principal a set of actions on an address pattern (`prod/stripe/*`). This module
holds no store, does no I/O and reads no clock: the facade loads every grant, builds one
`GrantIndex` and asks it `allows(principal, action, address)` on every request.

Rules, applied when evaluating (a grant stores only what was granted):

* `admin` on a pattern implies every action on it; `read` implies `use`; any action on an
  address implies `describe` of it.
* A grant whose environment segment is a wildcard never matches an address in a protected
  environment: access to `prod` must name `prod` literally.
* Store-wide operations (address None) need `admin` granted on `*/*/*` exactly; listing
  (`describe` with address None) is open to every authenticated principal, and the facade
  filters each listed address.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from fnmatch import fnmatchcase
from typing import Any, Final, NamedTuple

from ..address import MAX_SEGMENT, SEGMENT_RE, check_pattern, parse_ref
from ..errors import InvalidAddress, UsageError, ValidationError
from ..store import Record, rows
from .records import NS_GRANT, grant_fields

ACTIONS: Final = ("describe", "use", "read", "write", "rotate", "admin")

ROLES: Final[dict[str, tuple[str, ...]]] = {
    "admin": ACTIONS,
    "editor": ("describe", "use", "read", "write", "rotate"),
    "runner": ("describe", "use", "read"),
    "viewer": ("describe",),
}

STORE_PATTERN: Final = "*/*/*"
"""The only pattern on which `admin` also covers store-wide operations (address None)."""

_ACTION_SET: Final = frozenset(ACTIONS)
_WILDCARDS: Final = frozenset("*?")
_CACHE_MAX: Final = 10_000

_OPERATIONS: Final[dict[str, str]] = {
    "read": "read",
    "use": "use",
    "describe": "describe",
    "list": "describe",
    "history": "describe",
    "report": "describe",
    "write": "write",
    "delete": "write",
    "import": "write",
    "test": "use",
    "refresh": "use",
    "mint": "use",
    "rotate": "rotate",
    "retire": "rotate",
}
"""Operations that act on one address; every other operation (store-wide or unknown) is admin."""


class Grant(NamedTuple):
    id: str
    principal: str
    pattern: str
    """Normalised to 3 segments: `prod` is stored as `prod/*/*`."""
    actions: frozenset[str]
    """What was granted, without implications."""
    role: str | None = None
    created_at: str = ""
    created_by: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "principal": self.principal,
            "pattern": self.pattern,
            "actions": sorted(self.actions),
            "role": self.role,
            "created_at": self.created_at,
            "created_by": self.created_by,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Grant:
        """Rebuild a grant from `to_dict` output, validating its pattern and actions."""
        role = d.get("role")
        if role is not None and role not in ROLES:
            raise ValidationError(
                f"unknown role {role!r} in a stored grant", hint=f"roles are: {', '.join(ROLES)}"
            )
        return cls(
            id=_text(d, "id"),
            principal=_text(d, "principal"),
            pattern=normalize_pattern(_text(d, "pattern")),
            actions=parse_actions(d.get("actions", ())),
            role=role,
            created_at=_text(d, "created_at", ""),
            created_by=_text(d, "created_by", ""),
        )


def grant_from_record(rec: Record) -> Grant:
    """A stored grant, decoded and validated (StoreCorrupt if it is not one)."""
    where = rows.record_name(NS_GRANT, rec.key)
    fields = grant_fields(rec)
    try:
        grant = Grant.from_dict(fields)
    except UsageError:
        raise rows.corrupt(where, "its pattern, actions or role is invalid") from None
    return grant


def _text(d: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = d.get(key, default)
    if value is None:
        raise ValidationError(f"a grant needs {key!r}")
    if not isinstance(value, str):
        raise ValidationError(f"a grant's {key!r} must be text")
    return value


def normalize_pattern(pattern: str) -> str:
    """Validate a 1-3 segment pattern and pad it to 3 segments (`prod/stripe` → `prod/stripe/*`).

    Besides `address.check_pattern`, refuses segments no address could match: `.`/`..`,
    a literal that is not a valid address segment, or a segment longer than an address's.
    """
    if not isinstance(pattern, str):
        raise InvalidAddress("an address pattern must be text")
    parts = check_pattern(pattern).split("/")
    for part in parts:
        wild = not _WILDCARDS.isdisjoint(part)
        if (
            part in (".", "..")
            or len(part) > MAX_SEGMENT
            or (not wild and not SEGMENT_RE.match(part))
            or part[0] in "._-"
        ):
            raise InvalidAddress(
                f"invalid address pattern {pattern[:200]!r}: {part!r} can never match an address",
                hint="segments start with a lower-case letter, digit or wildcard: prod/stripe/*",
            )
    parts += ["*"] * (3 - len(parts))
    return "/".join(parts)


def parse_actions(text: str | Iterable[str]) -> frozenset[str]:
    """Parse `"read,use"` or `["read", "use"]` into a set of grant actions (roles are separate)."""
    items: Iterable[object] = text.split(",") if isinstance(text, str) else text
    found: set[str] = set()
    for item in items:
        if not isinstance(item, str):
            raise ValidationError(f"an action must be text, not {type(item).__name__}")
        for name in item.split(","):
            name = name.strip()
            if not name:
                continue
            if name not in _ACTION_SET:
                hint = f"actions are: {', '.join(ACTIONS)}"
                if name in ROLES:
                    hint += f" ({name!r} is a role: grant it as a role instead)"
                raise ValidationError(f"unknown action {name[:64]!r}", hint=hint)
            found.add(name)
    if not found:
        raise ValidationError("no actions given", hint=f"actions are: {', '.join(ACTIONS)}")
    return frozenset(found)


def role_actions(role: str) -> frozenset[str]:
    """The actions a role grants."""
    actions = ROLES.get(role) if isinstance(role, str) else None
    if actions is None:
        raise ValidationError(
            f"unknown role {str(role)[:64]!r}", hint=f"roles are: {', '.join(ROLES)}"
        )
    return frozenset(actions)


def required_action(op: str) -> str:
    """The grant action an operation needs: unknown and store-wide operations need `admin`."""
    return _OPERATIONS.get(op, "admin")


def implied_actions(actions: Iterable[str]) -> frozenset[str]:
    """Everything a set of granted actions allows: admin → all, read → use, anything → describe."""
    granted = _ACTION_SET.intersection(actions)
    if "admin" in granted:
        return _ACTION_SET
    if "read" in granted:
        granted |= {"use"}
    if granted:
        granted |= {"describe"}
    return frozenset(granted)


class _Compiled(NamedTuple):
    seq: int
    grant: Grant
    allowed: frozenset[str]
    env: str
    env_wild: bool
    service: str
    service_wild: bool
    name: str
    name_wild: bool


class _Bucket:
    """Grants sharing an environment (or a wildcard one), split by literal or wildcard service."""

    __slots__ = ("by_service", "wild_service")

    def __init__(self) -> None:
        self.by_service: dict[str, list[_Compiled]] = {}
        self.wild_service: list[_Compiled] = []

    def add(self, c: _Compiled) -> None:
        if c.service_wild:
            self.wild_service.append(c)
        else:
            self.by_service.setdefault(c.service, []).append(c)


class _PrincipalIndex:
    __slots__ = ("by_env", "grants", "store_admin", "wild_env")

    def __init__(self) -> None:
        self.grants: list[Grant] = []
        self.by_env: dict[str, _Bucket] = {}
        self.wild_env = _Bucket()
        self.store_admin: _Compiled | None = None


def _seg_matches(value: str, pattern: str, wild: bool) -> bool:
    return fnmatchcase(value, pattern) if wild else value == pattern


class GrantIndex:
    """Built once from all grants + protected envs; answers allows() fast."""

    def __init__(self, grants: Iterable[Grant], protected: Iterable[str]) -> None:
        self._protected = frozenset(protected)
        self._principals: dict[str, _PrincipalIndex] = {}
        self._cache: dict[tuple[str, str, str | None], bool] = {}
        for seq, grant in enumerate(grants):
            pattern = normalize_pattern(grant.pattern)
            env, service, name = pattern.split("/")
            c = _Compiled(
                seq=seq,
                grant=grant,
                allowed=implied_actions(grant.actions),
                env=env,
                env_wild=not _WILDCARDS.isdisjoint(env),
                service=service,
                service_wild=not _WILDCARDS.isdisjoint(service),
                name=name,
                name_wild=not _WILDCARDS.isdisjoint(name),
            )
            index = self._principals.get(grant.principal)
            if index is None:
                index = self._principals[grant.principal] = _PrincipalIndex()
            index.grants.append(grant)
            if c.env_wild:
                index.wild_env.add(c)
            else:
                index.by_env.setdefault(env, _Bucket()).add(c)
            if pattern == STORE_PATTERN and "admin" in grant.actions and index.store_admin is None:
                index.store_admin = c

    @property
    def protected(self) -> frozenset[str]:
        return self._protected

    def allows(self, principal: str, action: str, address: str | None) -> bool:
        """Whether `principal` may do grant action `action` on `address` (None: store-wide)."""
        key = (principal, action, address)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        if address is None and action == "describe":
            result = bool(principal)  # listing: the facade filters each address it lists
        else:
            result = next(self._matching(principal, action, address), None) is not None
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[key] = result
        return result

    def grants_of(self, principal: str) -> list[Grant]:
        """The principal's grants, in the order they were given."""
        index = self._principals.get(principal)
        return list(index.grants) if index is not None else []

    def explain(self, principal: str, action: str, address: str | None) -> Grant | None:
        """The earliest grant that allows it, or None (also for listing, which needs no grant)."""
        found = min(self._matching(principal, action, address), key=lambda c: c.seq, default=None)
        return found.grant if found is not None else None

    def _matching(self, principal: str, action: str, address: str | None) -> Iterator[_Compiled]:
        if action not in _ACTION_SET:
            return
        index = self._principals.get(principal)
        if index is None:
            return
        if address is None:
            if index.store_admin is not None:
                yield index.store_admin
            return
        try:
            (env, service, name), _field = parse_ref(address)
        except InvalidAddress:
            return
        buckets: list[_Bucket] = []
        literal = index.by_env.get(env)
        if literal is not None:
            buckets.append(literal)
        if env not in self._protected:
            buckets.append(index.wild_env)
        for bucket in buckets:
            for group in (bucket.by_service.get(service, ()), bucket.wild_service):
                for c in group:
                    if (
                        action in c.allowed
                        and _seg_matches(name, c.name, c.name_wild)
                        and _seg_matches(service, c.service, c.service_wild)
                        and _seg_matches(env, c.env, c.env_wild)
                    ):
                        yield c
