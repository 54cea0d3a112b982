"""A storm process: opens its own Warden, waits for the start time, then many threads ask for
the token at once. Run with multiprocessing's spawn context (a fresh interpreter per process)."""

from __future__ import annotations

import os
import threading
import time
from typing import Any


def storm(
    env: dict[str, str], address: str, threads: int, start_at: float, leeway: int, out: Any
) -> None:
    os.environ.update(env)
    from credwarden import Warden

    results: list[str] = []
    lock = threading.Lock()
    with Warden.open() as w:

        def call() -> None:
            try:
                value = w.access_token(address, leeway=leeway).reveal()
            except Exception as exc:  # reported to the parent, which fails the test
                value = f"ERROR {type(exc).__name__}: {exc}"
            with lock:
                results.append(value)

        workers = [threading.Thread(target=call) for _ in range(threads)]
        time.sleep(max(0.0, start_at - time.time()))
        for t in workers:
            t.start()
        for t in workers:
            t.join()
    out.put(results)
