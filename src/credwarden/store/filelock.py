"""Named locks for the SQLite store: OS file locks, released by the kernel if the holder dies.

A refresh must not hold SQLite's database write lock across an HTTP call (every
audited read would wait on the provider), so each name gets its own lock file
beside the database. `flock` locks belong to an open file description, so two
threads of one process exclude each other too.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import LockTimeout

POLL_MIN_S = 0.0005  # a refresh on loopback takes a few ms: start polling fast
POLL_MAX_S = 0.002  # only one leader per process polls; a short cap keeps hand-offs quick


@contextmanager
def file_lock(folder: str, name: str, *, timeout: float) -> Iterator[None]:
    os.makedirs(folder, mode=0o700, exist_ok=True)
    path = os.path.join(folder, hashlib.sha256(name.encode()).hexdigest()[:32] + ".lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        pause = POLL_MIN_S
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                raise LockTimeout(
                    f"{name} is being refreshed by another process for more than {timeout:g} s",
                    hint="retry shortly; credwarden will not refresh it twice at once",
                )
            time.sleep(pause)
            pause = min(pause * 2, POLL_MAX_S)
        try:
            yield
        finally:
            _unlock(fd)
    finally:
        os.close(fd)


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
