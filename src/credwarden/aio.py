"""Running blocking store reads for an asyncio event loop in batches (kept apart: a CLI `get`
must not pay for importing asyncio)."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
_Item = tuple[Callable[[Any], Any], str, "asyncio.Future[Any]"]


class ThreadBatcher:
    """Calls gathered during one loop iteration go to one thread as one batch, and come back
    with one wake-up of the loop. One thread hand-off per call (a thread pool) cost more
    than the reads themselves on PostgreSQL: the threads fought over the GIL (bench/rest.py:
    2,100 reads/s with 8 pool threads, 2,900 with 2). Each call names a key; `prefetch(keys)`
    fetches what the batch's calls need in one round trip and each call gets it."""

    def __init__(self, name: str, prefetch: Callable[[list[str]], Any]) -> None:
        self._name = name
        self._prefetch = prefetch
        self._pending: list[_Item] = []
        self._scheduled = False
        self._jobs: queue.SimpleQueue[tuple[list[_Item], asyncio.AbstractEventLoop] | None] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run(self, fn: Callable[[Any], T], key: str) -> T:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            old = self._loop
            if old is not None and not old.is_closed() and (self._scheduled or self._pending):
                raise RuntimeError("a Warden's async reads run on one event loop at a time")
            self._loop, self._pending, self._scheduled = loop, [], False
        fut: asyncio.Future[T] = loop.create_future()
        self._pending.append((fn, key, fut))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._submit, loop)
        return await fut

    def _submit(self, loop: asyncio.AbstractEventLoop) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, []
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name=self._name, daemon=True)
            self._thread.start()
        self._jobs.put((batch, loop))

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            batch, loop = job
            outcomes: list[tuple[bool, Any]] = []
            try:
                fetched = self._prefetch([key for _, key, _ in batch])
            except BaseException:  # each call then reads (and fails) on its own
                fetched = None
            for fn, _, _ in batch:
                try:
                    outcomes.append((True, fn(fetched)))
                except BaseException as exc:  # handed to that caller
                    outcomes.append((False, exc))
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_settle, batch, outcomes)

    def close(self) -> None:
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join(timeout=30)
            self._thread = None


def _settle(batch: list[_Item], outcomes: list[tuple[bool, Any]]) -> None:
    for (_, _, fut), (ok, value) in zip(batch, outcomes, strict=True):
        if fut.done():
            continue  # its request was cancelled (client gone)
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)
