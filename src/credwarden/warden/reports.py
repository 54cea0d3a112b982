"""Reports: lifecycle (expiring, rotation overdue, unused) over what the caller may describe,
and the least-privilege review of grants. One `report` or `review` event each; the rows are
computed by pure functions in lifecycle/reports.py and access/review.py."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from ..audit.chain import AuditEvent
from ..model import CredentialInfo
from ..operation import Op
from ..store import Tx
from ..timeutil import utcnow
from ..watch import usage
from .access import AccessOps
from .checks import check_span
from .credentials import CredentialOps

Rows = builtins.list[dict[str, Any]]


class ReportOps(CredentialOps, AccessOps):
    """Lifecycle reports and the permissions review."""

    def report_expiring(self, *, within: int) -> Rows:
        """Credentials that expired or expire within `within` seconds."""
        from ..lifecycle import reports

        horizon = utcnow() + timedelta(seconds=check_span("within", within))
        return self._report(
            "expiring", {"within": within}, lambda i: reports.expiring(i, horizon=horizon)
        )

    def report_rotation(self) -> Rows:
        """Credentials whose rotation policy is overdue."""
        from ..lifecycle import reports

        now = utcnow()
        return self._report("rotation", {}, lambda i: reports.rotation_due(i, now=now))

    def report_unused(self, *, days: int) -> Rows:
        """Credentials nobody read or used for `days` days."""
        from ..lifecycle import reports

        cutoff = utcnow() - timedelta(seconds=check_span("days", days, unit=86400))
        return self._report("unused", {"days": days}, lambda i: reports.unused(i, cutoff=cutoff))

    def _report(
        self, name: str, detail: dict[str, Any], build: Callable[[list[CredentialInfo]], Rows]
    ) -> Rows:
        """One `report` event; the rows cover only what the caller may describe."""

        def work(tx: Tx, op: Op) -> Rows:
            rows = build(self._visible(tx))
            op.detail = {"report": name, **detail, "count": len(rows)}
            return rows

        usage.fold(self._store)
        with self.access.pinned():
            return self._run("report", None, work, grouped=False)

    def review_permissions(
        self, *, days: int = 90, principal: str | None = None, flagged: bool = False
    ) -> Rows:
        """The least-privilege review: every grant (of `principal`), its last use, and flags
        (unused for `days` days, broad, admin). Needs admin: it reads grants and the log."""
        from ..access.review import review

        cutoff = utcnow() - timedelta(seconds=check_span("days", days, unit=86400))

        def work(tx: Tx, op: Op) -> Rows:
            grants = self._grants_in(tx, principal)
            events = {
                name: [AuditEvent.from_row(r) for r in tx.audit_scan(principal=name)]
                for name in {g.principal for g in grants}
            }
            rows = review(grants, self._protected_in(tx), events, cutoff=cutoff, flagged=flagged)
            op.detail = {
                "report": "permissions",
                "days": days,
                "count": len(rows),
                **({"principal": principal} if principal else {}),
            }
            return rows

        return self._run("review", None, work, grouped=False)


__all__ = ["ReportOps"]
