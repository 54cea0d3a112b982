"""Changes to principals, API tokens, grants and protected environments, inside one transaction.

The facade authorizes and audits; these functions validate, write the records and
bump the access generation so that every node reloads what it cached.
"""

from __future__ import annotations

import os
import re
from typing import Any, Final

from ..errors import AlreadyExists, NotFound, ValidationError
from ..model import NS_META, dumps, store_info
from ..store import Tx, rows
from .grants import Grant, grant_from_record, normalize_pattern, parse_actions, role_actions
from .records import (
    NS_APITOKEN,
    NS_GRANT,
    NS_PRINCIPAL,
    PRINCIPAL_TYPES,
    PrincipalRecord,
    TokenRecord,
)
from .state import bump_gen, protected_of
from .tokens import NewToken, new_token

NAME_RE: Final = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}\Z")
MAX_TEXT: Final = 500


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValidationError(
            f"invalid principal name {str(name)[:64]!r}",
            hint="lower-case letters, digits, '.', '_', '-' (at most 64), e.g. nightly-invoices",
        )
    return name


def _text(label: str, value: str | None) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > MAX_TEXT):
        raise ValidationError(f"{label} must be text of at most {MAX_TEXT} characters")
    return value or None


def principal(tx: Tx, name: str) -> PrincipalRecord:
    rec = tx.get(NS_PRINCIPAL, check_name(name))
    if rec is None:
        raise NotFound(
            f"no principal {name!r}", hint="`credwarden principal list` shows the principals"
        )
    return PrincipalRecord.from_record(rec)


def add_principal(
    tx: Tx,
    name: str,
    *,
    type: str,
    owner: str | None,
    description: str | None,
    created_by: str,
    now: str,
) -> PrincipalRecord:
    check_name(name)
    if type not in PRINCIPAL_TYPES:
        raise ValidationError(
            f"unknown principal type {str(type)[:32]!r}",
            hint=f"one of: {', '.join(PRINCIPAL_TYPES)}",
        )
    rec = PrincipalRecord(
        name, type, _text("owner", owner), _text("description", description), now, created_by
    )
    try:
        tx.put(NS_PRINCIPAL, name, rec.to_bytes(), rev=0)
    except AlreadyExists:
        raise AlreadyExists(f"principal {name!r} already exists") from None
    bump_gen(tx)
    return rec


def remove_principal(tx: Tx, name: str) -> dict[str, int]:
    """The principal, its grants and its tokens."""
    principal(tx, name)
    row = tx.get(NS_PRINCIPAL, name)
    assert row is not None
    grants = [r for r in tx.list(NS_GRANT) if grant_from_record(r).principal == name]
    tokens = [r for r in tx.list(NS_APITOKEN) if TokenRecord.from_record(r).principal == name]
    for r in grants:
        tx.delete(NS_GRANT, r.key, rev=r.rev)
    for r in tokens:
        tx.delete(NS_APITOKEN, r.key, rev=r.rev)
    tx.delete(NS_PRINCIPAL, name, rev=row.rev)
    bump_gen(tx)
    return {"grants": len(grants), "tokens": len(tokens)}


def add_token(
    tx: Tx,
    name: str,
    *,
    expires_at: str | None,
    description: str | None,
    created_by: str,
    now: str,
) -> tuple[TokenRecord, NewToken]:
    principal(tx, name)
    new = new_token()
    rec = TokenRecord(
        new.id,
        name,
        new.salt,
        new.hash,
        now,
        created_by,
        expires_at,
        None,
        _text("description", description),
    )
    tx.put(NS_APITOKEN, new.id, rec.to_bytes(), rev=0)
    bump_gen(tx)
    return rec, new


def revoke_token(tx: Tx, token_id: str, now: str) -> TokenRecord:
    row = tx.get(NS_APITOKEN, token_id) if re.fullmatch(r"[0-9a-f]{12}", token_id) else None
    if row is None:
        raise NotFound(
            f"no API token {token_id[:20]!r}",
            hint="`credwarden principal tokens NAME` lists token ids",
        )
    rec = TokenRecord.from_record(row)
    if rec.revoked_at is None:
        rec = rec._replace(revoked_at=now)
        tx.put(NS_APITOKEN, token_id, rec.to_bytes(), rev=row.rev)
        bump_gen(tx)
    return rec


def record_use(tx: Tx, used: dict[str, str]) -> int:
    """Keep the latest use time of each token (flushed in batches, not per request)."""
    n = 0
    for token_id, when in used.items():
        row = tx.get(NS_APITOKEN, token_id)
        if row is None:
            continue
        rec = TokenRecord.from_record(row)
        if rec.last_used_at is None or rec.last_used_at < when:
            tx.put(NS_APITOKEN, token_id, rec._replace(last_used_at=when).to_bytes(), rev=row.rev)
            n += 1
    return n


def add_grant(
    tx: Tx,
    name: str,
    pattern: str,
    *,
    actions: str | list[str] | None,
    role: str | None,
    created_by: str,
    now: str,
) -> Grant:
    """Grant actions (or a role's) on a pattern; a second grant on the same pattern merges."""
    principal(tx, name)
    norm = normalize_pattern(pattern)
    if (actions is None) == (role is None):
        raise ValidationError(
            "give either --actions or --role",
            hint="e.g. --actions read,use or --role runner",
        )
    wanted = role_actions(role) if role is not None else parse_actions(actions or "")
    for r in tx.list(NS_GRANT):
        g = grant_from_record(r)
        if g.principal == name and g.pattern == norm:
            merged = g._replace(actions=g.actions | wanted, role=role or g.role)
            if merged != g:
                tx.put(NS_GRANT, r.key, dumps(merged.to_dict()), rev=r.rev)
                bump_gen(tx)
            return merged
    grant = Grant(os.urandom(6).hex(), name, norm, wanted, role, now, created_by)
    tx.put(NS_GRANT, grant.id, dumps(grant.to_dict()), rev=0)
    bump_gen(tx)
    return grant


def revoke_grant(tx: Tx, name: str, pattern: str, *, actions: str | None) -> Grant | None:
    """Remove some actions of a grant, or (no actions given) the whole grant. Returns what is
    left of it (None when removed)."""
    principal(tx, name)
    norm = normalize_pattern(pattern)
    drop = parse_actions(actions) if actions else None
    for r in tx.list(NS_GRANT):
        g = grant_from_record(r)
        if g.principal == name and g.pattern == norm:
            left = g.actions - drop if drop is not None else frozenset()
            if left:
                kept = g._replace(actions=left, role=None)
                tx.put(NS_GRANT, r.key, dumps(kept.to_dict()), rev=r.rev)
            else:
                tx.delete(NS_GRANT, r.key, rev=r.rev)
                kept = None
            bump_gen(tx)
            return kept
    raise NotFound(
        f"{name} has no grant on {norm}",
        hint=f"`credwarden grants --principal {name}` shows its grants",
    )


def set_protected(tx: Tx, env: str, protected: bool) -> list[str]:
    row = tx.get(NS_META, "store")
    if row is None:
        raise rows.corrupt(rows.record_name(NS_META, "store"), "it is missing")
    info: dict[str, Any] = store_info(row.body)
    if env not in info.get("environments", []):
        raise NotFound(
            f"unknown environment {env[:64]!r}", hint="`credwarden environments` lists them"
        )
    current = set(protected_of(info))
    current = current | {env} if protected else current - {env}
    info["protected"] = sorted(current)
    tx.put(NS_META, "store", dumps(info), rev=row.rev)
    bump_gen(tx)
    return list(info["protected"])
