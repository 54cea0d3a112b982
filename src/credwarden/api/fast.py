"""The workflow hot path, `GET /v1/credentials/{env}/{service}/{name}/value`, answered in front
of the framework.

It is the same operation as the FastAPI route of that path (same authentication,
same facade call, same audit event before the value leaves, same error shape), but
without routing, dependency injection and response-model machinery, which cost more
than the read itself. The FastAPI route stays: it documents the path in OpenAPI and
answers the requests this front passes on (e.g. with a query string).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from typing import Any

from ..errors import CredwardenError
from ..operation import CALLER as _CALLER
from ..operation import Caller
from ..warden import Warden
from . import metrics
from .auth import authenticate, remembered
from .errors import body as body_of
from .errors import status_of

_VALUE = re.compile(r"/v1/credentials/([^/]{1,64})/([^/]{1,64})/([^/]{1,64})/value\Z")
_JSON = (b"content-type", b"application/json")
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class FastReads:
    def __init__(self, app: Any, warden: Warden) -> None:
        self.app = app
        self.warden = warden
        self._latency = metrics.LATENCY.labels("value")
        self._embedded = warden.store_dialect == "sqlite"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope["query_string"]:
            m = _VALUE.match(scope["path"])
            if m is not None:
                await self._value(scope, send, f"{m[1]}/{m[2]}/{m[3]}")
                return
        await self.app(scope, receive, send)

    async def _value(self, scope: dict[str, Any], send: Any, address: str) -> None:
        start = time.perf_counter()
        auth = agent = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                auth = value.decode("latin-1")
            elif name == b"user-agent":
                agent = value.decode("latin-1")
        client = scope.get("client")
        ip = client[0] if client else "unknown"
        w = self.warden
        headers = [_JSON]
        try:
            caller = remembered(w, auth, ip, agent)
            if caller is None:
                if self._embedded:  # a local file: checking inline costs microseconds
                    caller = authenticate(w, self.app.state.brake, auth, ip, agent)
                else:  # the store is across the network: not on the loop
                    caller = await asyncio.to_thread(
                        authenticate, w, self.app.state.brake, auth, ip, agent
                    )
            bound = _CALLER.set(Caller(caller.principal, "api", caller.client))
            try:
                version, values = await w.aread_values(address)
            finally:
                _CALLER.reset(bound)
            status, body = 200, _ENCODE(values).encode()
            headers.append((b"x-credwarden-version", str(version).encode()))
        except CredwardenError as exc:
            status, body = status_of(exc), _ENCODE(exc.to_dict()).encode()
            if status == 401:
                headers.append((b"www-authenticate", b"Bearer"))
        except Exception as exc:  # a bug: the one error shape, never the exception's text
            logging.getLogger("credwarden.api").error("internal error: %s", type(exc).__name__)
            status = 500
            body = _ENCODE(body_of("internal", "internal error", "see the server log", 1)).encode()
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        self._latency.observe(time.perf_counter() - start)
