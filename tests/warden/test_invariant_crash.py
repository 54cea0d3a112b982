"""Invariant 5: a crash at any instant leaves every committed credential readable and the audit
chain verifiable. A child process writing in a loop is SIGKILLed at random moments."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time

from credwarden import Warden
from tests import workers


def _run_and_kill(
    prefix: str, lines_before_kill: int, extra_delay: float, code: str = workers.CRASH_CHILD
) -> list[str]:
    """Start the writer, let it report `lines_before_kill` commits, then SIGKILL it."""
    lines: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-c", code, prefix],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        try:
            while len(lines) < lines_before_kill:
                line = proc.stdout.readline()
                if not line:
                    break
                lines.append(line.strip())
            time.sleep(extra_delay)  # land anywhere inside the next transaction
            proc.send_signal(signal.SIGKILL)
            # Read through the same buffered file as readline did (communicate() would read
            # the pipe beneath it and miss what that buffer already holds).
            rest = proc.stdout.read()
            err = proc.stderr.read() if proc.stderr else ""
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == -signal.SIGKILL, err
        lines += [x.strip() for x in rest.splitlines() if x.strip()]
    return lines


def test_sigkill_mid_write_leaves_a_readable_store(warden: Warden, database_url: str) -> None:
    rng = random.Random(os.getpid())
    committed: dict[str, set[str]] = {}
    for round_ in range(4):
        lines = _run_and_kill(f"r{round_}", rng.randint(3, 30), rng.random() * 0.01)
        assert lines, "the writer committed nothing"
        for line in lines:
            action, address = line.split()
            i = int(re.sub(r".*-c", "", address))
            if action == "added":
                committed[address] = (
                    {f"value-{i}", f"value-{i}-v2"} if i % 3 == 0 else {f"value-{i}"}
                )
            else:
                committed[address] = {f"value-{i}-v2"}

        with Warden.open(database_url=database_url) as w:
            stored = {i.address for i in w.list(env="dev", service="crash")}
            assert set(committed) <= stored
            # At most the one write in flight per kill may have committed unreported.
            assert len(stored - set(committed)) <= round_ + 1
            for address in stored:
                value = w.get(address).reveal()
                assert value.startswith("value-")
                if address in committed:
                    assert value in committed[address], (address, value)
                history = w.history(address)
                assert [h.version for h in history] == list(range(len(history), 0, -1))
            report = w.verify_audit()
            assert report.ok, report
            w.add(f"dev/after/crash-{round_}", "secret", {"value": "still writable"})
    assert warden.get("dev/after/crash-3").reveal() == "still writable"
    assert warden.verify_audit().ok


def test_sigkill_mid_key_rotation_leaves_a_readable_store(
    warden: Warden, database_url: str
) -> None:
    values = {f"dev/rot/c{i:02d}": f"value-{i}" for i in range(12)}
    for address, value in values.items():
        warden.add(address, "secret", {"value": value})
        warden.update(address, fields={"value": value + "-v2"})
    rng = random.Random(os.getpid())
    for round_ in range(3):
        delay = rng.random() * 0.005
        lines = _run_and_kill(f"r{round_}", rng.randint(5, 40), delay, workers.ROTATE_CHILD)
        assert any(line.startswith("rewrapped") for line in lines)
        with Warden.open(database_url=database_url) as w:
            for address, value in values.items():
                assert w.get(address).reveal() == value + "-v2"
                w.rollback(address, 1)  # old versions' keys too, and writable
                assert w.get(address).reveal() == value
            assert w.verify_audit().ok
        for address, value in values.items():
            warden.update(address, fields={"value": value + "-v2"})
    assert warden.get("dev/rot/c00").reveal() == "value-0-v2"
    assert warden.rotate_key()["rewrapped"] > 0
    assert warden.verify_audit().ok
