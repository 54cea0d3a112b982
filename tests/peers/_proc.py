"""A child server process that reports on stdout with one JSON object per line.

Shared by :mod:`tests.peers.oidc` and :mod:`tests.peers.dot`: starts the process, reads its
stdout on a thread into ``events``, waits for the ``{"event": "ready", ...}`` line, and stops
it without leaving a zombie, a thread or an open pipe behind (pytest runs with
``filterwarnings = error``, so a ResourceWarning would fail the test that leaked it).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any


class ServerProcess:
    def __init__(self, name: str, *, tmp_prefix: str = "cw-peer-") -> None:
        self.name = name
        self.tmp = Path(tempfile.mkdtemp(prefix=tmp_prefix))
        self.events: list[dict[str, Any]] = []
        self.ready_event: dict[str, Any] = {}
        self._changed = threading.Condition()
        self._ready = threading.Event()
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._stderr: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(
        self,
        argv: Sequence[str],
        *,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        ready_timeout: float = 15.0,
    ) -> dict[str, Any]:
        """Start ``argv``; return the ready event (raise, with stderr, if it never comes)."""
        if self._proc is not None:
            return self.ready_event
        self._stderr = open(self.tmp / "stderr.log", "w+b")  # noqa: SIM115
        self._proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            # The servers exit when their stdin closes, so they die with the test process.
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        self._reader = threading.Thread(
            target=self._read, name=f"{self.name}-{self._proc.pid}", daemon=True
        )
        self._reader.start()
        deadline = time.monotonic() + ready_timeout
        while not self._ready.wait(0.05):
            exited = self._proc.poll() is not None
            if exited or time.monotonic() > deadline:
                reason = (
                    f"exited with {self._proc.returncode}"
                    if exited
                    else f"not ready within {ready_timeout:.0f} s"
                )
                log = self.stderr_text()
                self.stop()
                raise RuntimeError(f"{self.name} {reason}; stderr:\n{log[-4000:]}")
        return self.ready_event

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for raw in self._proc.stdout:
            line = raw.strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                event = None
            if not isinstance(event, dict):
                event = {"event": "raw", "line": line}
            with self._changed:
                self.events.append(event)
                self._changed.notify_all()
            if event.get("event") == "ready" and not self._ready.is_set():
                self.ready_event = event
                self._ready.set()

    def stop(self) -> None:
        """Idempotent: close stdin, terminate, reap, join the reader, close the pipes."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
            try:
                proc.wait(timeout=0.5)  # most exit by themselves once stdin is closed
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
            if self._reader is not None:
                self._reader.join(timeout=5)
                self._reader = None
            if proc.stdout is not None:
                proc.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def stderr_text(self) -> str:
        try:
            return (self.tmp / "stderr.log").read_text(errors="replace")
        except OSError:
            return ""

    # -- events ------------------------------------------------------------------------------

    def events_of(self, kind: str) -> list[dict[str, Any]]:
        with self._changed:
            return [e for e in self.events if e.get("event") == kind]

    def wait_for_event(
        self, kind: str, timeout: float = 5.0, *, count: int = 1, **match: Any
    ) -> list[dict[str, Any]]:
        """Block until ``count`` events of ``kind`` whose fields equal ``match`` were logged."""

        def found() -> list[dict[str, Any]]:
            return [
                e
                for e in self.events
                if e.get("event") == kind and all(e.get(k) == v for k, v in match.items())
            ]

        with self._changed:
            if not self._changed.wait_for(lambda: len(found()) >= count, timeout):
                raise TimeoutError(
                    f"{self.name}: fewer than {count} {kind!r} event(s) matching {match} "
                    f"within {timeout} s"
                )
            return found()
