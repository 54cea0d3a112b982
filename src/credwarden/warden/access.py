"""Access: principals (people, workflows, services), their API tokens (stored hashed) and
grants; checking a presented token. Every change of access is a store-wide admin operation
and makes every node reload what it keeps in memory."""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..access.grants import Grant
from ..access.records import PrincipalRecord
from ..access.state import protected_of
from ..errors import Unauthenticated, ValidationError
from ..model import NS_META, store_info
from ..operation import Caller, Op, Principal
from ..secret import Secret
from ..store import Tx
from ..timeutil import iso, utcnow
from .base import WardenBase

T = TypeVar("T")


class AccessOps(WardenBase):
    """Principals, API tokens, grants, and authentication of API tokens."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._token_use: dict[str, str] = {}
        """API token id -> last use, kept in memory and flushed by the scheduler."""
        self._verified: dict[str, tuple[Any, Principal, str | None, str]] = {}
        """Tokens already verified against an access state (token -> state, principal, ...)."""

    def whoami(self) -> dict[str, Any]:
        """The principal operations are done for (no event: it reveals nothing stored)."""
        p = self.principal
        return {"name": p.name, "type": p.type}

    def _access_op(self, action: str, work: Callable[[Tx, Op], T]) -> T:
        """A store-wide change of access (needs `admin` on `*`); every node reloads after."""
        try:
            return self._run(action, None, work, grouped=False)
        finally:
            self.access.invalidate()

    def _protected_in(self, tx: Tx) -> frozenset[str]:
        row = tx.get(NS_META, "store")
        return protected_of(store_info(row.body) if row is not None else {})

    def add_principal(
        self,
        name: str,
        *,
        type: str = "workflow",
        owner: str | None = None,
        description: str | None = None,
        role: str | None = None,
        pattern: str = "*",
    ) -> PrincipalRecord:
        """A new principal (user, workflow or service); with `role`, granted it on `pattern`
        (and, for the admin role, on each protected environment by name)."""
        from ..access import manage
        from ..access.grants import normalize_pattern

        def work(tx: Tx, op: Op) -> PrincipalRecord:
            now = iso(utcnow())
            rec = manage.add_principal(
                tx,
                name,
                type=type,
                owner=owner,
                description=description,
                created_by=self.principal.name,
                now=now,
            )
            op.detail = {"principal": name, "type": type}
            if role is not None:
                patterns = [pattern]
                if role == "admin" and normalize_pattern(pattern) == "*/*/*":
                    patterns += [f"{e}/*/*" for e in sorted(self._protected_in(tx))]
                for p in patterns:
                    manage.add_grant(
                        tx, name, p, actions=None, role=role, created_by=rec.created_by, now=now
                    )
                op.detail["role"] = role
            return rec

        return self._access_op("principal.add", work)

    def principals(self) -> builtins.list[PrincipalRecord]:
        def work(tx: Tx, op: Op) -> builtins.list[PrincipalRecord]:
            from ..access.records import NS_PRINCIPAL

            out = [PrincipalRecord.from_record(r) for r in tx.list(NS_PRINCIPAL)]
            op.detail = {"count": len(out)}
            return out

        return self._run("principal.list", None, work)

    def principal_info(self, name: str) -> dict[str, Any]:
        """A principal with its grants and tokens (ids and dates, never the token)."""
        from ..access import manage
        from ..access.records import NS_APITOKEN, TokenRecord

        def work(tx: Tx, op: Op) -> dict[str, Any]:
            rec = manage.principal(tx, name)
            op.detail = {"principal": name}
            recs = [TokenRecord.from_record(r) for r in tx.list(NS_APITOKEN)]
            tokens = [t.to_dict() for t in recs if t.principal == name]
            return {
                **rec.to_dict(),
                "grants": [g.to_dict() for g in self._grants_in(tx, name)],
                "tokens": tokens,
            }

        return self._run("principal.show", None, work)

    def remove_principal(self, name: str) -> dict[str, int]:
        from ..access import manage

        def work(tx: Tx, op: Op) -> dict[str, int]:
            removed = manage.remove_principal(tx, name)
            op.detail = {"principal": name, **removed}
            return removed

        return self._access_op("principal.remove", work)

    def issue_token(
        self, name: str, *, expires_in: int | None = None, description: str | None = None
    ) -> tuple[dict[str, Any], Secret]:
        """A new API token for a principal: returned once, stored only as a salted hash."""
        from datetime import timedelta

        from ..access import manage

        if expires_in is not None and (not isinstance(expires_in, int) or expires_in <= 0):
            raise ValidationError("the token lifetime must be a positive number of seconds")

        def work(tx: Tx, op: Op) -> tuple[dict[str, Any], Secret]:
            now = utcnow()
            expires = iso(now + timedelta(seconds=expires_in)) if expires_in else None
            rec, new = manage.add_token(
                tx,
                name,
                expires_at=expires,
                description=description,
                created_by=self.principal.name,
                now=iso(now),
            )
            op.detail = {"principal": name, "token": rec.id, "expires_at": expires}
            return rec.to_dict(), Secret(new.text)

        return self._access_op("token.issue", work)

    def tokens(self, name: str | None = None) -> builtins.list[dict[str, Any]]:
        from ..access.records import NS_APITOKEN, TokenRecord

        def work(tx: Tx, op: Op) -> builtins.list[dict[str, Any]]:
            recs = [TokenRecord.from_record(r) for r in tx.list(NS_APITOKEN)]
            out = [t.to_dict() for t in recs if name is None or t.principal == name]
            op.detail = {"count": len(out), **({"principal": name} if name else {})}
            return out

        return self._run("token.list", None, work)

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        from ..access import manage

        def work(tx: Tx, op: Op) -> dict[str, Any]:
            rec = manage.revoke_token(tx, token_id, iso(utcnow()))
            op.detail = {"principal": rec.principal, "token": rec.id}
            return rec.to_dict()

        return self._access_op("token.revoke", work)

    def grant(
        self,
        name: str,
        pattern: str,
        *,
        actions: str | Sequence[str] | None = None,
        role: str | None = None,
    ) -> Grant:
        """Allow a principal `actions` (or a role's) on credentials matching `pattern`."""
        from ..access import manage

        def work(tx: Tx, op: Op) -> Grant:
            g = manage.add_grant(
                tx,
                name,
                pattern,
                actions=list(actions) if isinstance(actions, list | tuple) else actions,  # type: ignore[arg-type]
                role=role,
                created_by=self.principal.name,
                now=iso(utcnow()),
            )
            op.detail = {"principal": name, "pattern": g.pattern, "actions": sorted(g.actions)}
            return g

        return self._access_op("grant.add", work)

    def revoke_grant(self, name: str, pattern: str, *, actions: str | None = None) -> Grant | None:
        from ..access import manage

        def work(tx: Tx, op: Op) -> Grant | None:
            left = manage.revoke_grant(tx, name, pattern, actions=actions)
            op.detail = {
                "principal": name,
                "pattern": pattern,
                "left": sorted(left.actions) if left else [],
            }
            return left

        return self._access_op("grant.revoke", work)

    def grants(self, name: str | None = None) -> builtins.list[Grant]:
        def work(tx: Tx, op: Op) -> builtins.list[Grant]:
            out = self._grants_in(tx, name)
            op.detail = {"count": len(out), **({"principal": name} if name else {})}
            return out

        return self._run("grant.list", None, work)

    def _grants_in(self, tx: Tx, name: str | None) -> builtins.list[Grant]:
        from ..access.grants import grant_from_record
        from ..access.records import NS_GRANT

        out = [grant_from_record(r) for r in tx.list(NS_GRANT)]
        return sorted(
            (g for g in out if name is None or g.principal == name),
            key=lambda g: (g.principal, g.pattern),
        )

    def authenticate(
        self, token: str, *, client: dict[str, Any] | None = None, audit: bool = True
    ) -> Principal:
        """The principal an API token belongs to; an unknown, expired or revoked token (or one
        whose principal was removed) is refused, and the refusal audited."""
        from ..access.tokens import secret_matches, split_token

        state = self.access.current()  # one snapshot for the whole check (and the cache)
        known = self.remembered(token)
        if known is not None:
            return known
        parts = split_token(token)
        rec = state.tokens.get(parts[0]) if parts else None
        settled = True  # everything came from `state`: safe to remember against it
        if parts and rec is None:
            rec = self.access.token(parts[0])  # made elsewhere since the last load?
            settled = False
        now = _now_second()
        reason = None
        owner = None
        if not token:
            reason = "missing"
        elif parts is None:
            reason = "malformed"
        elif rec is None or not secret_matches(rec.salt, rec.hash, parts[1]):
            reason = "unknown"
        elif rec.revoked_at is not None:
            reason = "revoked"
        elif rec.expires_at is not None and rec.expires_at <= now:
            reason = "expired"
        else:
            owner = state.principals.get(rec.principal)
            if owner is None:  # added elsewhere since the last load, or removed
                self.access.invalidate()
                owner = self.access.current().principals.get(rec.principal)
                settled = False
            if owner is None:
                reason = "principal_removed"
        if reason is not None:
            if audit:
                named = rec.principal if rec is not None and reason != "unknown" else "anonymous"
                self._audit_refusal(named, "denied", reason, client)
            raise Unauthenticated(
                f"the API token is {reason if reason in ('revoked', 'expired') else 'not valid'}",
                hint="ask an admin for a new one: credwarden principal token NAME",
            )
        assert rec is not None and owner is not None
        self._token_use[rec.id] = now
        principal = Principal(owner.name, owner.type)
        if settled:
            if len(self._verified) > 10_000:
                self._verified.clear()
            # Remembered against this access state: any change of tokens, grants or principals
            # (here or on another node) makes a new state, and the token is checked afresh.
            self._verified[token] = (state, principal, rec.expires_at, rec.id)
        return principal

    def remembered(self, token: str) -> Principal | None:
        """The principal of a token already verified against the access state held in memory,
        without reading anything (None: check it in full with `authenticate`)."""
        state = self.access.peek()
        hit = self._verified.get(token)
        if state is None or hit is None or hit[0] is not state:
            return None
        now = _now_second()
        if hit[2] is not None and hit[2] <= now:
            return None
        self._token_use[hit[3]] = now
        return hit[1]

    def note_lockout(self, ip: str, client: dict[str, Any]) -> None:
        """Audit (once per lock-out) that a source is refused after repeated bad tokens."""
        self._audit_refusal("anonymous", "rate_limited", "too_many_failures", client)

    def _audit_refusal(
        self, named: str, result: str, reason: str, client: dict[str, Any] | None
    ) -> None:
        """An `authenticate` event for a request that got no principal."""
        op = Op(detail={"reason": reason})
        op.caller = Caller(Principal(named, "unknown"), "api", client)
        self.ops.audit_alone("authenticate", None, result, op)

    def flush_token_use(self) -> int:
        """Write the tokens' last-use times kept in memory (the scheduler calls this)."""
        from ..access import manage

        used, self._token_use = self._token_use, {}
        if not used:
            return 0
        try:
            with self._store.transaction() as tx:
                return manage.record_use(tx, used)
        except BaseException:
            for k, v in used.items():  # kept for the next flush
                if self._token_use.get(k, "") < v:
                    self._token_use[k] = v
            raise


_NOW: list[Any] = [0, ""]


def _now_second() -> str:
    """The current time as stored (ISO, UTC), recomputed once per second: token expiry and
    last-use times need no finer grain, and the check runs on every API request."""
    second = int(time.time())
    if _NOW[0] != second:
        _NOW[0], _NOW[1] = second, iso(utcnow())
    return str(_NOW[1])


__all__ = ["AccessOps"]
