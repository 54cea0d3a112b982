"""Group commit for audited reads served from an asyncio event loop (kept apart: a CLI `get`
must not pay for importing asyncio)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from .group import Entry


class AsyncGroupCommit:
    """The same for readers on an asyncio event loop (the API server): each reader awaits the
    commit holding its event; events queued while one commit runs (in a writer thread, off the
    loop) go together in the next. All bookkeeping happens on the loop thread."""

    def __init__(self, commit: Callable[[list[Entry]], None]) -> None:
        self._commit = commit
        self._pending: list[tuple[Entry, asyncio.Future[None]]] = []
        self._busy = False
        self._executor: ThreadPoolExecutor | None = None

    async def run(self, entry: Entry) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._pending.append((entry, fut))
        if not self._busy:
            self._busy = True
            self._flush(loop)
        await fut

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._pending = self._pending, []
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="credwarden-audit")
        work = loop.run_in_executor(self._executor, self._commit, [e for e, _ in batch])

        def done(f: asyncio.Future[None]) -> None:
            exc = f.exception()
            for _, waiter in batch:
                if waiter.done():
                    continue  # its request was cancelled (client gone)
                if exc is not None:
                    waiter.set_exception(exc)
                else:
                    waiter.set_result(None)
            if self._pending:
                self._flush(loop)
            else:
                self._busy = False

        work.add_done_callback(done)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
