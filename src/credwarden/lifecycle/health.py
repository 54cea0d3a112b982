"""A credential's health, derived from its metadata at the moment it is asked for."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from ..timeutil import parse_iso

HEALTH_STATES: Final = ("ok", "expiring", "expired", "rotation_due", "needs_reauth", "invalid")
EXPIRY_WARNING: Final = timedelta(days=14)


def compute_health(
    *,
    now: datetime,
    expires_at: str | None,
    rotate_every: int | None,
    rotated_at: str,
    override: str | None = None,
) -> str:
    """The worst applicable state: a stored failure, then expiry, then rotation."""
    if override in ("needs_reauth", "invalid"):
        return override
    if expires_at:
        exp = parse_iso(expires_at)
        if exp <= now:
            return "expired"
        if exp - now <= EXPIRY_WARNING:
            return "expiring"
    if rotate_every and now - parse_iso(rotated_at) >= timedelta(seconds=rotate_every):
        return "rotation_due"
    return "ok"
