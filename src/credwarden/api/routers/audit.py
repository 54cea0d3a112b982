"""The audit log, the verification of its chain, and key rotation (admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from ...warden.checks import MAX_AUDIT_LIMIT
from ..bodies import ADDRESS
from ..calls import As, route, v1_router

router = v1_router("audit")


@route(router, "audit.list", summary="Audit events, oldest first (admin)")
def audit(
    a: As,
    address: Annotated[str | None, Query(pattern=ADDRESS, max_length=200)] = None,
    principal: Annotated[str | None, Query(max_length=100)] = None,
    since: Annotated[
        str | None, Query(max_length=64, description="24h, 7d, YYYY-MM-DD or an ISO time")
    ] = None,
    limit: Annotated[int | None, Query(ge=1, le=MAX_AUDIT_LIMIT)] = None,
) -> list[dict[str, Any]]:
    events = a.run(
        lambda w: w.audit_events(address=address, principal=principal, since=since, limit=limit)
    )
    return [e.to_dict() for e in events]


@route(router, "audit.verify", summary="Check the whole audit chain (admin)")
def audit_verify(a: As) -> dict[str, Any]:
    return dict(a.run(lambda w: w.verify_audit()).to_dict())


@route(router, "keys.rotate", summary="New key-encryption key, data keys re-wrapped (admin)")
def rotate_key(a: As) -> dict[str, int]:
    return dict(a.run(lambda w: w.rotate_key()))
