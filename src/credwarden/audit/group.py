"""Group commit for audited reads: concurrent readers share one audit transaction.

Every read must be audited before it returns, and on one store the appends are
serialized (the hash chain). Alone, a reader does its read and its append in one
write transaction, as before. When readers overlap, the one holding the write
transaction (the leader) also appends the events of the readers queued meanwhile,
who did their reads in read-only snapshots; each is released only once the
transaction holding its event has committed (or fails with its error). A hundred
concurrent readers then cost a few commits, not a hundred.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
Entry = Any  # what the facade needs to write one event; opaque here


class _Waiter:
    __slots__ = ("entry", "error", "event", "lead")

    def __init__(self, entry: Entry) -> None:
        self.entry = entry
        self.event = threading.Event()
        self.error: BaseException | None = None
        self.lead = False


Take = Callable[[], list[Entry]]


class GroupCommit:
    """Leader/follower group commit. `commit(entries)` writes queued events in one transaction."""

    def __init__(self, commit: Callable[[list[Entry]], None]) -> None:
        self._commit = commit
        self._lock = threading.Lock()
        self._pending: list[_Waiter] = []
        self._busy = False

    def run(
        self, lead: Callable[[Take], T], follow: Callable[[], T], entry_of: Callable[[], Entry]
    ) -> T:
        """Lead (`lead(take)`: write transaction with the caller's work and event, then the
        events `take()` returns) when no transaction is in flight; else `follow()` (read-only
        work) and wait until a leader has committed our event."""
        with self._lock:
            leader = not self._busy
            self._busy = True
        if leader:
            result: T = self._lead(lead, [])
            return result
        result = follow()
        waiter = _Waiter(entry_of())
        with self._lock:
            if self._busy:
                self._pending.append(waiter)
            else:  # the leader finished meanwhile: commit our own event
                self._busy = True
                waiter.lead = True
        if not waiter.lead:
            waiter.event.wait()
        if waiter.lead:
            self._lead(lambda take: self._commit(take()), [waiter])
        if waiter.error is not None:
            raise waiter.error
        return result

    def _lead(self, lead: Callable[[Take], Any], first: list[_Waiter]) -> Any:
        taken = list(first)

        def take() -> list[Entry]:
            with self._lock:
                batch, self._pending = self._pending, []
            taken.extend(batch)
            return [w.entry for w in taken]

        try:
            return lead(take)
        except BaseException as exc:
            for w in taken:
                w.error = exc
            raise
        finally:
            with self._lock:
                nxt = self._pending.pop(0) if self._pending else None
                if nxt is None:
                    self._busy = False
            for w in taken:
                w.lead = False
                w.event.set()
            if nxt is not None:
                nxt.lead = True
                nxt.event.set()
