"""Group commit for audited reads served from an asyncio event loop (kept apart: a CLI `get`
must not pay for importing asyncio)."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable

from .group import Entry

_Batch = list[tuple[Entry, "asyncio.Future[None]"]]


class AsyncGroupCommit:
    """Readers on an event loop await the commit holding their event; one commit at a time
    writes every event queued since the last (all bookkeeping on the loop thread).

    `inline` (an embedded SQLite store): the events of the requests handled in one loop
    iteration are committed at its end, on the loop itself. A commit to a local WAL file
    costs tens of microseconds, while handing batches to a thread made the two threads pass
    the GIL back and forth around every SQLite call (measured with bench/rest.py: 7.4k
    reads/s with a writer thread, 11.4k inline). Otherwise (a networked store, where a
    commit waits on the network and the disk of another machine) a writer thread commits,
    and events queue meanwhile.
    """

    def __init__(self, commit: Callable[[list[Entry]], None], *, inline: bool) -> None:
        self._commit = commit
        self._inline = inline
        self._pending: _Batch = []
        self._busy = False  # a flush is scheduled or a commit is running
        self._jobs: queue.SimpleQueue[tuple[_Batch, asyncio.AbstractEventLoop] | None] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run(self, entry: Entry) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._bind(loop)
        fut: asyncio.Future[None] = loop.create_future()
        self._pending.append((entry, fut))
        if not self._busy:
            self._busy = True
            loop.call_soon(self._flush, loop)
        await fut

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Serve another event loop (e.g. the SDK's successive `asyncio.run`): what was pending
        on a closed one has nobody waiting for it."""
        old = self._loop
        if old is not None and not old.is_closed() and self._busy:
            raise RuntimeError("a Warden's async reads run on one event loop at a time")
        self._loop, self._pending, self._busy = loop, [], False

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._pending = self._pending, []
        if self._inline:
            self._done(loop, batch, self._write_batch(batch))
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._writer, name="cw-audit", daemon=True)
            self._thread.start()
        self._jobs.put((batch, loop))

    def _write_batch(self, batch: _Batch) -> BaseException | None:
        try:
            self._commit([e for e, _ in batch])
        except BaseException as exc:  # handed to every reader of the batch
            return exc
        return None

    def _writer(self) -> None:
        while (job := self._jobs.get()) is not None:
            batch, loop = job
            error = self._write_batch(batch)
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(self._done, loop, batch, error)

    def _done(
        self, loop: asyncio.AbstractEventLoop, batch: _Batch, error: BaseException | None
    ) -> None:
        for _, waiter in batch:
            if waiter.done():
                continue  # its request was cancelled (client gone)
            if error is not None:
                waiter.set_exception(error)
            else:
                waiter.set_result(None)
        if self._pending:
            if self._inline:
                loop.call_soon(self._flush, loop)
            else:
                self._flush(loop)
        else:
            self._busy = False

    def close(self) -> None:
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join(timeout=30)
            self._thread = None
