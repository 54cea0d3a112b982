"""The least-privilege review: every grant, when its principal last used it, and flags
(unused, broad, admin). Pure: the facade hands it the grants, the protected environments and
each principal's audit events."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from ..audit.chain import AuditEvent
from ..timeutil import parse_iso
from .grants import Grant, GrantIndex, required_action

BROAD_ACTIONS = frozenset({"read", "write", "admin"})


def review(
    grants: Iterable[Grant],
    protected: Iterable[str],
    events: Mapping[str, Sequence[AuditEvent]],
    *,
    cutoff: datetime,
    flagged: bool = False,
) -> list[dict[str, Any]]:
    """One row per grant: the grant, `last_used_at` (the newest successful event the grant
    alone would allow) and `flags`; with `flagged`, only rows that have a flag."""
    shielded = frozenset(protected)
    rows: list[dict[str, Any]] = []
    for g in grants:
        index = GrantIndex([g], shielded)
        last = None
        for ev in reversed(events.get(g.principal, ())):
            if (
                ev.result == "ok"
                and ev.address is not None
                and index.allows(g.principal, required_action(ev.action), ev.address)
            ):
                last = ev.ts
                break
        flags = []
        if last is None or parse_iso(last) <= cutoff:
            flags.append("unused")
        env, service, _name = g.pattern.split("/")
        if (_wild(env) or _wild(service)) and g.actions & BROAD_ACTIONS:
            flags.append("broad")
        if "admin" in g.actions:
            flags.append("admin")
        if flagged and not flags:
            continue
        rows.append({**g.to_dict(), "last_used_at": last, "flags": flags})
    return rows


def _wild(segment: str) -> bool:
    return "*" in segment or "?" in segment


__all__ = ["BROAD_ACTIONS", "review"]
