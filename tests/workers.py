"""Code run in other processes (spawned, so it must be importable), kept free of pytest."""

from __future__ import annotations

import os
import sys


def cas_increments(url: str, home: str, address: str, count: int) -> None:
    """Add 1 to the counter stored at `address`, `count` times, by compare-and-set."""
    os.environ["CREDWARDEN_HOME"] = home
    from credwarden import Conflict, Warden

    with Warden.open(database_url=url, source=f"worker-{os.getpid()}") as w:
        done = conflicts = 0
        while done < count:
            cred = w.read(address)
            value = int(cred.reveal()["value"])
            try:
                w.update(
                    address,
                    fields={"value": str(value + 1)},
                    expected_version=cred.info.version,
                )
            except Conflict:
                conflicts += 1
                continue
            done += 1
    sys.stdout.flush()


CRASH_CHILD = """
import sys
from credwarden import Warden

prefix = sys.argv[1]
w = Warden.open(source="crash-child")
i = 0
while True:
    address = f"dev/crash/{prefix}-c{i:05d}"
    w.add(address, "secret", {"value": f"value-{i}"})
    print(f"added {address}", flush=True)
    if i % 3 == 0:
        w.update(address, fields={"value": f"value-{i}-v2"})
        print(f"updated {address}", flush=True)
    i += 1
"""

ROTATE_CHILD = """
from credwarden import Warden

def report(done, total):
    print("rewrapped", done, flush=True)


w = Warden.open(source="rotate-child")
while True:
    result = w.rotate_key(batch=1, progress=report)
    print("rotated", result["term"], flush=True)
"""
