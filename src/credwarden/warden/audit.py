"""The audit log (query, verify) and the keys (KEK rotation with online re-wrapping), plus
the store's liveness for /healthz."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any

from ..address import parse_address
from ..audit.chain import AuditEvent, VerifyReport
from ..errors import AuditError, StoreCorrupt, StoreError, ValidationError
from ..model import NS_META
from ..operation import Op
from ..store import AuditHead, AuditRow, Tx
from ..timeutil import parse_since
from .base import WardenBase
from .checks import MAX_AUDIT_LIMIT


def _event(row: AuditRow) -> AuditEvent:
    """A listed event, or its stand-in (result `unreadable`) when it does not decode: one bad
    row must not hide the rest of the log; `audit verify` says what happened to it."""
    try:
        return AuditEvent.from_row(row)
    except StoreCorrupt:
        return AuditEvent.unreadable(row.seq)


class AuditOps(WardenBase):
    """Audit events, the chain's verification, key rotation and health."""

    def audit_events(
        self,
        *,
        address: str | None = None,
        principal: str | None = None,
        since: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[AuditEvent]:
        """Audit events, oldest first (the last `limit` when given). `since`: 24h, 7d, a date
        or an ISO timestamp."""
        if address is not None:
            address = str(parse_address(address))
        if since is not None:
            since = parse_since(since)
        if limit is not None and (type(limit) is not int or not 1 <= limit <= MAX_AUDIT_LIMIT):
            raise ValidationError(f"limit must be a number from 1 to {MAX_AUDIT_LIMIT}")

        def work(tx: Tx, op: Op) -> builtins.list[AuditEvent]:
            rows = list(
                tx.audit_scan(
                    address=address,
                    principal=principal,
                    since=since,
                    limit=limit,
                    newest_first=limit is not None,
                )
            )
            if limit is not None:
                rows.reverse()
            op.detail = {"count": len(rows)}
            return [_event(r) for r in rows]

        return self._run("audit.read", None, work)

    def verify_audit(self) -> VerifyReport:
        """Check the whole chain; the report names the first bad event."""
        self.ops.authorize("audit.verify", None)
        with self._store.transaction(write=False) as tx:
            head: AuditHead | str | None
            try:
                head = tx.audit_head()
            except StoreCorrupt:
                head = "is malformed (not a sequence number, hash and MAC)"
            report = self._chain.verify(tx.audit_scan(), head)
        if report.ok and report.checked == 0:
            # `init` always writes the first event: an empty log on a store was emptied.
            report = VerifyReport(False, 0, 1, "the audit log is empty: its events were removed")
        result = "ok" if report.ok else "tampered"
        try:
            self.ops.audit_alone("audit.verify", None, result, Op(detail=report.to_dict()))
        except AuditError:
            if report.ok:
                raise
            # A tampered log may refuse new events (a forged row in the way): the report of
            # what is wrong matters more than recording that it was asked for.
        return report

    def rotate_key(
        self, *, progress: Callable[[int, int], None] | None = None, batch: int = 200
    ) -> dict[str, int]:
        """Add a KEK term and re-wrap every data key under it, online and in batches (two
        events: the new term, then the re-wrap done)."""
        barrier = self.records.barrier

        def add_term(tx: Tx, op: Op) -> tuple[int, bytes]:
            term, kek = barrier.add_term(tx)
            op.detail = {"term": term}
            return term, kek

        term, kek = self._run("key.rotate", None, add_term)
        barrier.activate(term, kek)  # only once the new term is committed
        keys = self.records.version_keys()
        done = 0
        for start in range(0, len(keys), batch):
            with self._store.transaction() as tx:
                for key in keys[start : start + batch]:
                    self.records.rewrap(tx, key, term)
            done = min(start + batch, len(keys))
            if progress:
                progress(done, len(keys))
        if not keys and progress:
            progress(0, 0)

        def finish(tx: Tx, op: Op) -> None:
            op.detail = {"term": term, "rewrapped": len(keys)}

        self._run("key.rewrap", None, finish)
        return {"term": term, "rewrapped": len(keys)}

    def health(self) -> dict[str, Any]:
        """Whether the store answers (for /healthz: no credential data, no audit event)."""
        try:
            with self._store.transaction(write=False) as tx:
                tx.get(NS_META, "store")
            reachable = True
        except StoreError:
            reachable = False
        return {"store": self._store.dialect, "store_reachable": reachable}


__all__ = ["AuditOps"]
