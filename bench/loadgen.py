"""HTTP/1.1 keep-alive load generator, run in its own process so it never shares a GIL with the
server under test; bench/rest.py uses it to load our REST read and a hello-world the same way.

`run_load(url, connections=32, seconds=5, headers=..., warmup=1)` starts this file as a child
process and returns its `LoadResult`. As a command:

    python bench/loadgen.py URL [-c 32] [-d 5] [-w 1] [-H 'Name: value']...

prints the result as JSON. `client_cpu` is the cores this process used while measuring
(CPU seconds / wall seconds), so the client's share of the machine is visible in every result.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import NamedTuple, cast
from urllib.parse import urlsplit

# Hand-written on raw asyncio protocols: an async client library (httpx, aiohttp) costs more CPU
# per request than the server under test, and wrk is not something the project installs.


class LoadResult(NamedTuple):
    requests: int  # responses completed in the measured window (non-2xx included)
    errors: int  # connect failures and connections lost with a request outstanding
    non_2xx: int
    seconds: float  # measured wall time, warm-up excluded
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    client_cpu: float = 0.0  # cores used by the load generator while measuring


class _Stats:
    """Shared by every connection of one run; `measuring` is flipped by timers."""

    def __init__(self) -> None:
        self.measuring = False
        self.running = True
        self.latencies: list[int] = []
        self.requests = 0
        self.errors = 0
        self.non_2xx = 0


class _Conn(asyncio.Protocol):
    """One keep-alive connection with exactly one request outstanding at a time.

    The next request is written from `data_received` as soon as a response is complete,
    so a request costs one callback, a buffer scan and one write: no coroutine switch.
    """

    def __init__(self, request: bytes, stats: _Stats, on_lost: Callable[[], None]) -> None:
        self.request = request
        self.stats = stats
        self.on_lost = on_lost
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.t0 = 0
        self.outstanding = False
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.outstanding = True
        self.t0 = time.perf_counter_ns()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        end, status, close = _parse_response(buf)
        if end < 0:
            self.buf = buf
            return
        t1 = time.perf_counter_ns()
        self.buf = buf[end:]  # empty unless the server sent more than one response
        self.outstanding = False
        stats = self.stats
        if stats.measuring:
            stats.requests += 1
            stats.latencies.append(t1 - self.t0)
            if not 200 <= status < 300:
                stats.non_2xx += 1
        assert self.transport is not None
        if close:
            self.closing = True
            self.transport.close()  # connection_lost reconnects
        elif stats.running:
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.outstanding and self.stats.running and self.stats.measuring:
            self.stats.errors += 1
        self.outstanding = False
        if self.stats.running:
            self.on_lost()


def _parse_response(buf: bytes) -> tuple[int, int, bool]:
    """(end of the first complete response or -1, status, server asked to close)."""
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return -1, 0, False
    head = buf[:head_end].lower()
    status = int(head[9:12])
    close = b"\r\nconnection: close" in head or head.startswith(b"http/1.0")
    body = head_end + 4
    i = head.find(b"\r\ncontent-length:")
    if i >= 0:
        j = head.find(b"\r\n", i + 17)
        end = body + int(head[i + 17 : j if j >= 0 else None])
        return (end if len(buf) >= end else -1), status, close
    if b"\r\ntransfer-encoding: chunked" in head:
        pos = body
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                return -1, status, close
            size = int(buf[pos:eol].split(b";", 1)[0], 16)
            pos = eol + 2
            if size == 0:  # last chunk, then trailers up to an empty line
                if buf[pos : pos + 2] == b"\r\n":
                    return pos + 2, status, close
                t = buf.find(b"\r\n\r\n", pos)
                return (t + 4 if t >= 0 else -1), status, close
            pos += size + 2
            if len(buf) < pos:
                return -1, status, close
    if status in (204, 304) or 100 <= status < 200:
        return body, status, close
    return -1, status, close  # body delimited by close: not supported, the run will show errors


def build_request(url: str, headers: dict[str, str] | None = None) -> tuple[str, int, bytes]:
    """(host, port, the GET request bytes sent unchanged on every request)."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"only http://host[:port]/path URLs are supported, got {url!r}")
    port = parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [f"GET {path} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return parts.hostname, port, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _run(
    url: str, connections: int, seconds: float, headers: dict[str, str] | None, warmup: float
) -> LoadResult:
    host, port, request = build_request(url, headers)
    loop = asyncio.get_running_loop()
    stats = _Stats()
    conns: set[_Conn] = set()
    pending: set[asyncio.Task[None]] = set()

    async def connect() -> None:
        while stats.running:
            try:
                _, conn = await loop.create_connection(
                    lambda: _Conn(request, stats, reconnect), host, port
                )
            except OSError:
                if stats.measuring:
                    stats.errors += 1
                await asyncio.sleep(0.01)
                continue
            conns.add(conn)
            return

    def reconnect() -> None:
        task = loop.create_task(connect())
        pending.add(task)
        task.add_done_callback(pending.discard)

    done = loop.create_future()
    marks: dict[str, float] = {}

    def start_measuring() -> None:
        marks["t"], marks["cpu"] = time.perf_counter(), time.process_time()
        stats.measuring = True

    def stop_measuring() -> None:
        stats.measuring = False
        stats.running = False
        marks["seconds"] = time.perf_counter() - marks["t"]
        marks["cpu"] = time.process_time() - marks["cpu"]
        done.set_result(None)

    for _ in range(connections):
        reconnect()
    loop.call_later(warmup, start_measuring)
    loop.call_later(warmup + seconds, stop_measuring)
    await done
    for conn in conns:
        if conn.transport is not None:
            conn.transport.abort()
    for task in list(pending):
        task.cancel()
    await asyncio.sleep(0)

    lat = sorted(stats.latencies)
    elapsed = marks["seconds"]

    def pct(q: float) -> float:
        return lat[min(len(lat) - 1, int(q * len(lat)))] / 1e6 if lat else 0.0

    return LoadResult(
        requests=stats.requests,
        errors=stats.errors,
        non_2xx=stats.non_2xx,
        seconds=round(elapsed, 3),
        rps=round(stats.requests / elapsed, 1),
        p50_ms=round(pct(0.50), 3),
        p99_ms=round(pct(0.99), 3),
        max_ms=round(lat[-1] / 1e6 if lat else 0.0, 3),
        client_cpu=round(marks["cpu"] / elapsed, 3),
    )


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def load_in_this_process(
    url: str,
    *,
    connections: int = 32,
    seconds: float = 5.0,
    headers: dict[str, str] | None = None,
    warmup: float = 1.0,
) -> LoadResult:
    """Run the load on this process's own event loop (what the child of `run_load` does)."""
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(_run(url, connections, seconds, headers, warmup))


def run_load(
    url: str,
    *,
    connections: int = 32,
    seconds: float = 5.0,
    headers: dict[str, str] | None = None,
    warmup: float = 1.0,
) -> LoadResult:
    """Run the load from a child process (`python bench/loadgen.py ...`) and return its result."""
    argv = [sys.executable, __file__, url, "-c", str(connections), "-d", str(seconds)]
    argv += ["-w", str(warmup)]
    for name, value in (headers or {}).items():
        argv += ["-H", f"{name}: {value}"]
    # The child's stderr is inherited, so its tracebacks show up beside the caller's output.
    out = subprocess.run(
        argv, stdout=subprocess.PIPE, text=True, timeout=warmup + seconds + 120, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"loadgen exited with {out.returncode} (its stderr is above)")
    return LoadResult(**json.loads(out.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("url")
    parser.add_argument("-c", "--connections", type=int, default=32)
    parser.add_argument("-d", "--seconds", type=float, default=5.0)
    parser.add_argument("-w", "--warmup", type=float, default=1.0)
    parser.add_argument(
        "-H", "--header", action="append", default=[], help="'Name: value', repeatable"
    )
    args = parser.parse_args(argv)
    headers: dict[str, str] = {}
    for header in args.header:
        name, sep, value = header.partition(":")
        if not sep:
            parser.error(f"header {header!r} is not 'Name: value'")
        headers[name.strip()] = value.strip()
    result = load_in_this_process(
        args.url,
        connections=args.connections,
        seconds=args.seconds,
        headers=headers,
        warmup=args.warmup,
    )
    print(json.dumps(result._asdict()))


if __name__ == "__main__":
    main()
