"""Ctrl-C that always lands: helper threads never take SIGINT, the main thread never sleeps
through one, and a short write can hold it until it has committed.

The kernel hands a process-directed SIGINT to any thread that does not block it; CPython
runs the handler only in the main thread, at its next bytecode, so a main thread parked in
one long C-level wait would not notice a signal that another thread received until that
wait ended (this was `connect` ignoring Ctrl-C until its timeout).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

SLICE = 0.1
"""Longest uninterrupted C-level wait of the main thread, in seconds."""


def quiet_thread(target: Callable[[], object]) -> threading.Thread:
    """A daemon thread that blocks SIGINT, so the kernel delivers Ctrl-C to the main thread."""

    def run() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        target()

    return threading.Thread(target=run, daemon=True)


def wait_event(event: threading.Event, timeout: float) -> bool:
    """`event.wait(timeout)` in slices, so a pending Ctrl-C is raised within SLICE seconds."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return event.is_set()
        if event.wait(min(left, SLICE)):
            return True


@contextmanager
def held() -> Iterator[list[int]]:
    """Hold Ctrl-C while the body runs (a write that must not be cut between its commit and
    its report); the yielded list collects the signals that arrived. Outside the main
    thread, or when SIGINT is not Python's default handler, this holds nothing."""
    arrived: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield arrived
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:
        yield arrived
        return

    def note(signum: int, frame: FrameType | None) -> None:
        arrived.append(signum)

    signal.signal(signal.SIGINT, note)
    try:
        yield arrived
    finally:
        signal.signal(signal.SIGINT, previous)
