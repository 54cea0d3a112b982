"""Lifecycle reports over credentials' metadata: what expires, what is due for rotation, what
nobody uses. Pure functions: the facade loads what the caller may describe and calls these,
so the CLI, the API and the remote client get the same rows."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from ..model import CredentialInfo
from ..timeutil import parse_iso

Row = dict[str, Any]


def _row(info: CredentialInfo, why: str) -> Row:
    return {**info.to_dict(), "why": why}


def expiring(infos: Iterable[CredentialInfo], *, horizon: datetime) -> list[Row]:
    """Credentials that expired or expire by `horizon`, soonest first."""
    hits = [i for i in infos if i.expires_at and parse_iso(i.expires_at) <= horizon]
    hits.sort(key=lambda i: i.expires_at or "")
    return [_row(i, f"expires {(i.expires_at or '')[:10]}") for i in hits]


def rotation_due(infos: Iterable[CredentialInfo], *, now: datetime) -> list[Row]:
    """Credentials whose rotation policy (rotate_every) is overdue at `now`."""
    rows = []
    for i in infos:
        if i.rotate_every:
            due = parse_iso(i.rotated_at) + timedelta(seconds=i.rotate_every)
            if due <= now:
                rows.append(_row(i, f"due since {due.date()} (last {i.rotated_at[:10]})"))
    return rows


def unused(infos: Iterable[CredentialInfo], *, cutoff: datetime) -> list[Row]:
    """Credentials nobody read or used since `cutoff` (created before it)."""
    rows = []
    for i in infos:
        last = i.last_used_at
        if last is None and parse_iso(i.created_at) <= cutoff:
            rows.append(_row(i, "never used"))
        elif last is not None and parse_iso(last) <= cutoff:
            rows.append(_row(i, f"last used {last[:10]}"))
    return rows


__all__ = ["expiring", "rotation_due", "unused"]
