"""A credential's health, derived from its metadata at the moment it is asked for."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from ..model import CredentialInfo, CredentialRecord, VersionRecord
from ..timeutil import parse_iso, utcnow

HEALTH_STATES: Final = (
    "ok",
    "expiring",
    "expired",
    "rotation_due",
    "needs_reauth",
    "invalid",
    "corrupt",
)
"""`corrupt`: the stored record does not decode (`list` names it; nothing of it is used)."""
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


def credential_info(
    cred: CredentialRecord, ver: VersionRecord, last_used: str | None
) -> CredentialInfo:
    """What `describe` shows of a credential: metadata, health now, and field names (secret
    fields map to None: their values are never decrypted for this)."""
    fields: dict[str, str | None] = {**dict.fromkeys(ver.secret), **ver.plain}
    return CredentialInfo(
        address=cred.address,
        id=cred.id,
        kind=cred.kind,
        version=cred.version,
        provider=cred.provider,
        description=cred.description,
        owner=cred.owner,
        tags=dict(cred.tags),
        links=list(cred.links),
        created_at=cred.created_at,
        updated_at=cred.updated_at,
        rotated_at=cred.rotated_at,
        expires_at=cred.expires_at,
        rotate_every=cred.rotate_every,
        last_used_at=last_used,
        health=compute_health(
            now=utcnow(),
            expires_at=cred.expires_at,
            rotate_every=cred.rotate_every,
            rotated_at=cred.rotated_at,
            override=cred.health_override,
        ),
        fields=dict(sorted(fields.items())),
    )


def corrupt_info(address: str) -> CredentialInfo:
    """The entry `list` shows for a credential whose stored record does not decode: its
    address (the row's key) and nothing else of it."""
    return CredentialInfo(
        address=address,
        id="",
        kind="",
        version=0,
        provider=None,
        description=None,
        owner=None,
        tags={},
        links=[],
        created_at="",
        updated_at="",
        rotated_at="",
        expires_at=None,
        rotate_every=None,
        last_used_at=None,
        health="corrupt",
        fields={},
    )
