"""Raw ASGI middleware (cheaper per request than Starlette's BaseHTTPMiddleware): a cap on
request bodies, and the latency histogram."""

from __future__ import annotations

import json
import time
from typing import Any

from . import errors as api_errors
from . import metrics

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Any
Send = Any
ASGIApp = Any


def _too_large(limit: int) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    body = json.dumps(
        api_errors.body(
            "too_large",
            f"the request body is larger than {limit} bytes",
            "send less: credential values are limited to 64 KiB each",
            2,
        )
    ).encode()
    return body, [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]


class BodyLimit:
    """413 for a body over `limit` bytes, whether announced by Content-Length or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = True
                if too_big:
                    await self._refuse(send)
                    return
        seen = 0
        started = False
        hijacked = False  # the body overflowed before the app answered: the answer is our 413

        async def counting_receive() -> Message:
            nonlocal seen, hijacked
            message: Message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    hijacked = not started
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if hijacked:
                # The app caught the receive error and answered anyway (FastAPI turns any
                # error reading a body into its own 400): the client gets the 413, once.
                if not started:
                    started = True
                    await self._refuse(send)
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body, headers = _too_large(self.limit)
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


_KNOWN = frozenset(
    {
        "credentials",
        "import",
        "env-vars",
        "environments",
        "whoami",
        "principals",
        "tokens",
        "grants",
        "audit",
        "keys",
        "connect",
    }
)


def route_label(path: str) -> str:
    """A bounded label for the latency histogram (never the address: unbounded, and data)."""
    if path.startswith("/v1/credentials/"):
        last = path.rsplit("/", 1)[-1]
        if last in ("value", "token", "headers", "versions", "rollback", "test"):
            return last
        return "credential"
    if path.startswith("/v1/"):
        first = path.split("/")[2]
        return first if first in _KNOWN else "other"  # never a label per unknown path
    return "other"


class Timing:
    """Observe each HTTP request's latency in the histogram."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            metrics.LATENCY.labels(route_label(scope["path"])).observe(time.perf_counter() - start)
