"""Reports over what the caller may describe, and the least-privilege review (admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from ..bodies import Days, Within
from ..calls import SEG, As, route, v1_router

router = v1_router("reports")
Rows = list[dict[str, Any]]


@route(router, "reports.expiring", summary="Credentials expired or expiring soon (filtered)")
def report_expiring(a: As, within: Within = 14 * 86400) -> Rows:
    return list(a.run(lambda w: w.report_expiring(within=within)))


@route(router, "reports.rotation", summary="Credentials whose rotation is overdue (filtered)")
def report_rotation(a: As) -> Rows:
    return list(a.run(lambda w: w.report_rotation()))


@route(router, "reports.unused", summary="Credentials nobody read or used lately (filtered)")
def report_unused(a: As, days: Days = 90) -> Rows:
    return list(a.run(lambda w: w.report_unused(days=days)))


@route(router, "reports.permissions", summary="The least-privilege review of grants (admin)")
def review_permissions(
    a: As,
    days: Days = 90,
    principal: Annotated[str | None, Query(pattern=SEG, max_length=64)] = None,
    flagged: bool = False,
) -> Rows:
    return list(
        a.run(lambda w: w.review_permissions(days=days, principal=principal, flagged=flagged))
    )
