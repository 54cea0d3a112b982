"""The one operation path: authorize -> work in one transaction -> one audit event.

Each operation on a credential leaves exactly one audit event: in the same transaction as a
write, and before a read returns its value. A read whose event cannot be written fails with
AuditError. Concurrent reads share one audit commit (group commit: the first reader writes
the events of the readers that queued meanwhile). Reads on an event loop are group-committed
per loop iteration (audit/agroup.py). Domain code sees this class as `operation.Operations`.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from ..access.policy import Policy
from ..audit.chain import AuditChain
from ..audit.group import GroupCommit
from ..errors import (
    AuditError,
    Conflict,
    CredwardenError,
    NotFound,
    PermissionDenied,
    StoreCorrupt,
    StoreError,
    ValidationError,
)
from ..model import NS_CRED
from ..operation import CALLER, Caller, Entry, Op, Principal
from ..store import Store, Tx
from ..store.base import Record

T = TypeVar("T")

READ_ACTIONS = frozenset({"read", "use", "describe", "list", "history", "audit.read"})
"""Actions whose events are group-committed by default."""

_WRITE_FAILED = "check the database is writable and has space"


def _hint(exc: StoreError) -> str:
    """A corrupt log needs a restore, not more space."""
    return exc.hint if isinstance(exc, StoreCorrupt) and exc.hint else _WRITE_FAILED


class Pipeline:
    """Runs operations for the current caller against one store, and writes their events."""

    def __init__(self, store: Store, chain: AuditChain, policy: Policy, default: Caller) -> None:
        self._store = store
        self._chain = chain
        self.policy = policy
        self.default = default
        self.event_hook: Callable[[str, str], None] | None = None
        """(action, result) of every event written: the server's metrics."""
        self._group = GroupCommit(self._commit)
        self._agroup: Any = None  # audit.agroup.AsyncGroupCommit, made by the first async read
        self._readers: Any = None  # aio.ThreadBatcher: async reads of a networked store

    def close(self) -> None:
        if self._agroup is not None:
            self._agroup.close()
        if self._readers is not None:
            self._readers.close()

    # -- who -------------------------------------------------------------------------------

    @property
    def caller(self) -> Caller:
        return CALLER.get() or self.default

    @property
    def principal(self) -> Principal:
        return self.caller.principal

    @contextmanager
    def acting_as(
        self, principal: Principal, *, source: str = "api", client: dict[str, Any] | None = None
    ) -> Iterator[object]:
        token = CALLER.set(Caller(principal, source, client))
        try:
            yield self
        finally:
            CALLER.reset(token)

    # -- access ------------------------------------------------------------------------------

    def allowed(self, action: str, address: str | None) -> bool:
        return self.policy.allows(self.principal, action, address)

    def denied(self, action: str, address: str | None) -> PermissionDenied:
        return PermissionDenied(
            f"{self.principal.name} may not {action} {address or 'this store'}",
            hint="ask an admin for a grant: credwarden grant PRINCIPAL PATTERN --actions ...",
        )

    def authorize(
        self, action: str, address: str | None, op: Op | None = None, *, audit_as: str | None = None
    ) -> None:
        """Refuse (and audit the refusal, as `audit_as` if given) unless the caller's grants
        allow `action`."""
        if not self.allowed(action, address):
            self.audit_alone(audit_as or action, address, "denied", op or Op())
            raise self.denied(action, address)

    # -- events ------------------------------------------------------------------------------

    def audit(self, tx: Tx, entries: Sequence[Entry]) -> None:
        """Events for several operations at once: one head read and update (group commit)."""
        if not entries:
            return
        default = self.default
        try:
            self._chain.append_many(
                tx,
                [
                    (
                        (c := op.caller or default).principal.name,
                        c.source,
                        c.client,
                        action,
                        address,
                        result,
                        op.version,
                        op.detail,
                    )
                    for action, address, result, op in entries
                ],
            )
        except StoreError as exc:
            raise AuditError(
                f"the audit event could not be written ({exc.message}); the operation was refused",
                hint=_hint(exc),
            ) from None
        if self.event_hook is not None:
            for action, _address, result, _op in entries:
                self.event_hook(action, result)

    def audit_alone(self, action: str, address: str | None, result: str, op: Op) -> None:
        """One event in a transaction of its own."""
        self.commit_events([(action, address, result, op)])

    def commit_events(self, entries: Sequence[Entry]) -> None:
        """Several events in one transaction of their own."""
        try:
            with self._store.transaction() as tx:
                self.audit(tx, entries)
        except StoreError as exc:
            raise AuditError(
                f"the audit event could not be written ({exc.message})", hint=_hint(exc)
            ) from None

    def _commit(self, entries: list[Any]) -> None:
        """The group committer's writer: the readers' events, or their read refused."""
        try:
            with self._store.transaction() as tx:
                self.audit(tx, entries)
        except StoreError as exc:
            raise AuditError(
                f"the audit event could not be committed ({exc.message}); the read was refused",
                hint=_hint(exc),
            ) from None

    def audit_failure(self, action: str, address: str | None, exc: CredwardenError, op: Op) -> None:
        if isinstance(exc, ValidationError):
            return  # bad input changes nothing, the audit log included
        op.detail = {**op.detail, "error": exc.code}
        self.audit_alone(action, address, failure_result(exc), op)

    # -- running -----------------------------------------------------------------------------

    def run(
        self,
        action: str,
        address: str | None,
        work: Callable[[Tx, Op], T],
        *,
        grouped: bool | None = None,
        needs: str | None = None,
    ) -> T:
        """Authorize, perform `work` in one transaction, audit it there; audit failures too.
        `needs`: the grant action to check when the audited `action` is not one itself."""
        op = Op()
        self.authorize(needs or action, address, op, audit_as=action if needs else None)
        try:
            if action in READ_ACTIONS if grouped is None else grouped:
                return self._group.run(
                    lambda take: self._lead(action, address, work, op, take),
                    lambda: self._follow(work, op),
                    lambda: (action, address, "ok", op),
                )
            return self._lead(action, address, work, op, None)
        except AuditError:
            raise
        except CredwardenError as exc:
            self.audit_failure(action, address, exc, op)
            raise

    def within(self, work: Callable[[Tx, Op], T]) -> T:
        """`work` as a step of an operation whose own event records it: one write
        transaction, no event (see warden/connections.py: a live test's token)."""
        with self._store.transaction() as tx:
            return work(tx, Op())

    def _lead(
        self,
        action: str,
        address: str | None,
        work: Callable[[Tx, Op], T],
        op: Op,
        take: Callable[[], list[Any]] | None,
    ) -> T:
        """The work and its event in one write transaction, plus (for reads) the events of the
        readers that queued meanwhile (group commit)."""
        auditing = False
        try:
            with self._store.transaction() as tx:
                result = work(tx, op)
                auditing = True
                self.audit(tx, [(action, address, "ok", op), *(take() if take else ())])
        except StoreError as exc:
            if auditing:
                raise AuditError(
                    f"the audit event could not be committed ({exc.message});"
                    " the operation was refused",
                    hint=_hint(exc),
                ) from None
            raise
        return result

    def _follow(self, work: Callable[[Tx, Op], T], op: Op) -> T:
        """A read while another reader holds the audit transaction: a snapshot read; the
        leader then writes this read's event before we return."""
        with self._store.transaction(write=False) as tx:
            return work(tx, op)

    async def arun(self, action: str, address: str | None, work: Callable[[Tx, Op], T]) -> T:
        """`run` for a read on an event loop. The event is group-committed (audit/agroup.py)
        and awaited before the result is returned. On an embedded (SQLite) store the read runs
        inline (microseconds); on a networked one in a thread, so the loop never waits on the
        network."""
        embedded = self._store.dialect == "sqlite"
        if self._agroup is None:
            from ..audit.agroup import AsyncGroupCommit

            self._agroup = AsyncGroupCommit(self._commit, inline=embedded)
        op = Op()
        # Denials and failures are group-committed like successes: a flood of refused or
        # missing reads must not stall on one commit each.
        if not self.allowed(action, address):
            await self._agroup.run((action, address, "denied", op))
            raise self.denied(action, address)

        def read(fetched: Mapping[str, Record | None] | None = None) -> T:
            # One record is read (its versions are immutable and cached): no transaction.
            with self._store.statements() as tx:
                return work(tx if fetched is None else _Fetched(tx, fetched), op)

        try:
            result = read() if embedded else await self._in_reader(read, address or "")
        except CredwardenError as exc:
            if not isinstance(exc, ValidationError):
                op.detail = {**op.detail, "error": exc.code}
                await self._agroup.run((action, address, failure_result(exc), op))
            raise
        await self._agroup.run((action, address, "ok", op))
        return result

    async def _in_reader(self, fn: Callable[[Any], T], address: str) -> T:
        """Run a store read in the reader thread, batched with the others of the same loop
        iteration, their credential records fetched in one statement (aio.py)."""
        if self._readers is None:
            from ..aio import ThreadBatcher

            def prefetch(keys: list[str]) -> dict[str, Record | None]:
                asked = sorted(set(keys))
                with self._store.statements() as tx:
                    found = tx.get_many(NS_CRED, asked)
                return {k: found.get(k) for k in asked}  # None: did not exist

            self._readers = ThreadBatcher("cw-read", prefetch)
        result: T = await self._readers.run(fn, address)
        return result


class _Fetched(Tx):
    """A statement-level Tx whose credential records were fetched for a whole batch of reads
    (one round trip); anything else is read as usual."""

    __slots__ = ("_fetched", "_tx")

    def __init__(self, tx: Tx, fetched: Mapping[str, Record | None]) -> None:
        self._tx = tx
        self._fetched = fetched

    def get(self, ns: str, key: str) -> Record | None:
        if ns == NS_CRED and key in self._fetched:
            return self._fetched[key]
        return self._tx.get(ns, key)

    def put(self, ns: str, key: str, body: bytes, *, rev: int) -> int:
        return self._tx.put(ns, key, body, rev=rev)

    def delete(self, ns: str, key: str, *, rev: int) -> None:
        self._tx.delete(ns, key, rev=rev)

    def list(self, ns: str, prefix: str = "") -> builtins.list[Record]:
        return self._tx.list(ns, prefix)

    def audit_head(self) -> Any:
        return self._tx.audit_head()

    def audit_append(self, rows: Any, head: Any) -> None:
        self._tx.audit_append(rows, head)

    def audit_scan(self, **kw: Any) -> Any:
        return self._tx.audit_scan(**kw)


def failure_result(exc: CredwardenError) -> str:
    """The audit result of a failed operation."""
    if isinstance(exc, NotFound):
        return "not_found"
    return "conflict" if isinstance(exc, Conflict) else "error"


__all__ = ["READ_ACTIONS", "Pipeline", "failure_result"]
