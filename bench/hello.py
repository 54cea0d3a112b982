"""Hello-world baselines served the way our REST API is, so bench/rest.py can compare against them.

`app` is Starlette, `fastapi_app` FastAPI (imported only when asked for, FastAPI is slow to
import); both answer GET /hello with a JSON body about the size of a credential value.
`serve_in_process("bench.hello:app", port=...)` runs any ASGI app under uvicorn (uvloop +
httptools, no access log) in a subprocess and returns once it answers HTTP; `stop(proc)` ends it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ROOT = Path(__file__).resolve().parent.parent
BODY = {"api_key": "x" * 32}
STARLETTE_APP = "bench.hello:app"
FASTAPI_APP = "bench.hello:fastapi_app"


async def hello(request: Request) -> JSONResponse:
    return JSONResponse(BODY)


app = Starlette(routes=[Route("/hello", hello, methods=["GET"])])


def _make_fastapi_app() -> Any:
    from fastapi import FastAPI

    fastapi_app = FastAPI()

    @fastapi_app.get("/hello")
    async def hello() -> dict[str, str]:
        return BODY

    return fastapi_app


def __getattr__(name: str) -> Any:
    if name == "fastapi_app":
        value = _make_fastapi_app()
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def serve_in_process(
    app_import: str,
    *,
    port: int,
    workers: int = 1,
    env: Mapping[str, str] | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 60.0,
) -> subprocess.Popen[bytes]:
    """Start `uvicorn app_import` on 127.0.0.1:port; return once every worker is ready.

    `app_import` is resolved from the repository root ("bench.hello:app"); `env` is laid over
    os.environ; `extra_args` go to uvicorn as they are (e.g. "--factory").
    """
    argv = [sys.executable, "-m", "uvicorn", app_import, "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--workers", str(workers), "--loop", "uvloop"]
    argv += ["--http", "httptools", "--no-access-log", "--log-level", "warning", *extra_args]
    proc = subprocess.Popen(
        argv, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL
    )
    try:
        _wait_ready(proc, port, workers, time.monotonic() + timeout)
    except BaseException:
        stop(proc)
        raise
    return proc


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM (uvicorn shuts down gracefully and takes its workers with it), then SIGKILL."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_ready(proc: subprocess.Popen[bytes], port: int, workers: int, deadline: float) -> None:
    # Any HTTP answer (a 404 too) means the app is imported and serving.
    while not _answers_http(port):
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {proc.returncode} (its stderr is above)")
        if time.monotonic() > deadline:
            raise TimeoutError(f"uvicorn not answering on 127.0.0.1:{port}")
        time.sleep(0.05)
    if workers > 1:
        # With --workers the supervisor owns the listening socket, so one answer proves only one
        # worker; wait until all worker processes exist and have stopped burning CPU on imports.
        _wait_children_idle(proc.pid, workers, deadline)


def _answers_http(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            return sock.recv(16).startswith(b"HTTP/")
    except OSError:
        return False


def _wait_children_idle(pid: int, workers: int, deadline: float) -> None:
    if not os.path.isdir("/proc"):
        time.sleep(3.0)
        return
    tick = 0.2
    hz = os.sysconf("SC_CLK_TCK")
    last: dict[int, int] = {}
    while time.monotonic() < deadline:
        now = {child: _cpu_ticks(child) for child in _children(pid)}
        busy = [c for c, t in now.items() if t - last.get(c, -(10**9)) > 0.05 * hz * tick]
        if len(now) >= workers and not busy:
            return
        last = now
        time.sleep(tick)
    raise TimeoutError(f"uvicorn workers of {pid} still busy starting")


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime
