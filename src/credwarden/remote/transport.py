"""The remote client's HTTP: one keep-alive connection to `credwarden serve` over the standard
library's http.client (a remote `credwarden get` must start as fast as a local one), the
route table's paths, and the server's error shape turned back into credwarden's exceptions.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import threading
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from ..errors import (
    CredwardenError,
    PermissionDenied,
    RateLimited,
    StoreError,
    Unauthenticated,
    UsageError,
)
from ..routes import BY_NAME
from ..secret import Secret
from ..settings import is_loopback_host

DEFAULT_TIMEOUT = 30.0
IDLE_REOPEN_S = 4.0
"""A write on a connection idle this long goes on a new one: the server may have closed it
(uvicorn's keep-alive is 15 s), and a write is never retried."""
_TOKEN_RE = re.compile(r"[\x21-\x7e]{8,4096}\Z")
_DROPPED = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)


def shown_url(url: str) -> str:
    """scheme://host[:port]/path of a server URL: no user info, query or fragment."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<invalid URL>"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


def segment(value: object) -> str:
    """One path segment, URL-quoted."""
    return urllib.parse.quote(str(value), safe="")


def _error_classes() -> tuple[dict[str, type[CredwardenError]], dict[int, type[CredwardenError]]]:
    """Every CredwardenError subclass loaded, by code and (most general first) by exit code."""
    by_code: dict[str, type[CredwardenError]] = {}
    by_exit: dict[int, type[CredwardenError]] = {}
    queue: list[type[CredwardenError]] = [CredwardenError]
    while queue:
        cls = queue.pop(0)
        by_code.setdefault(cls.code, cls)
        by_exit.setdefault(cls.exit_code, cls)
        queue.extend(cls.__subclasses__())
    return by_code, by_exit


def _make_error(cls: type[CredwardenError], message: str, hint: str | None) -> CredwardenError:
    try:
        return cls(message, hint=hint)
    except TypeError:  # a subclass with its own constructor (e.g. OAuthError)
        exc = cls.__new__(cls)
        CredwardenError.__init__(exc, message, hint=hint)
        return exc


def _text(d: Mapping[str, Any], key: str, limit: int) -> str | None:
    v = d.get(key)
    return v[:limit] if isinstance(v, str) else None


class Transport:
    """Requests to one server with one API token; thread-safe (one request at a time)."""

    def __init__(self, url: str, token: str | Secret, *, timeout: float, agent: str) -> None:
        token = token.reveal() if isinstance(token, Secret) else token
        token = token.strip()
        self.url_shown = shown_url(url)
        try:
            parts = urllib.parse.urlsplit(url.strip())
            port = parts.port
        except ValueError:
            parts, port = None, None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(
                f"CREDWARDEN_URL is not an http(s) URL ({self.url_shown})",
                hint="e.g. https://credwarden.internal or http://127.0.0.1:8470",
            )
        if parts.username is not None or parts.password is not None:
            raise UsageError(
                f"CREDWARDEN_URL must not hold a user name or password ({self.url_shown})",
                hint="the API token (CREDWARDEN_TOKEN) is what authenticates",
            )
        if (
            parts.scheme == "http"
            and not is_loopback_host(parts.hostname)
            and os.environ.get("CREDWARDEN_ALLOW_HTTP") != "1"
        ):
            raise UsageError(
                f"CREDWARDEN_URL is plain http to another machine ({self.url_shown}): the API"
                " token and every secret read would cross the network unencrypted",
                hint="use https (a TLS proxy in front of `credwarden serve`), or set"
                " CREDWARDEN_ALLOW_HTTP=1 on a network you trust",
            )
        if not _TOKEN_RE.match(token):
            raise UsageError(  # never echo it: it is (almost) a secret
                "CREDWARDEN_TOKEN is malformed (expected one word such as cwt_...)",
                hint="copy it again from `credwarden principal token NAME` (on the server)",
            )
        if not (0 < timeout <= 3600):
            raise UsageError("the timeout must be between 0 and 3600 seconds")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = port
        self._prefix = parts.path.rstrip("/")
        self._token = Secret(token)
        self._timeout = float(timeout)
        self._agent = agent
        self._conn: http.client.HTTPConnection | None = None
        self._last_use = 0.0
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def route(
        self,
        name: str,
        params: Mapping[str, object] | None = None,
        *,
        query: Sequence[tuple[str, Any]] = (),
        body: Any = None,
        timeout: float | None = None,
    ) -> Any:
        """Call the route `name` of the route table, its `{params}` filled in (quoted)."""
        r = BY_NAME[name]
        path = r.path.format(**{k: segment(v) for k, v in (params or {}).items()})
        return self.call(r.method, path, query=query, body=body, timeout=timeout)

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._https:
                import ssl

                cafile = os.environ.get("SSL_CERT_FILE") or os.environ.get("REQUESTS_CA_BUNDLE")
                try:
                    ctx = ssl.create_default_context(cafile=cafile or None)
                except (OSError, ssl.SSLError):
                    raise UsageError(
                        "cannot load the CA certificates named by SSL_CERT_FILE/REQUESTS_CA_BUNDLE",
                        hint="point it at a readable PEM bundle, or unset it",
                    ) from None
                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self._timeout, context=ctx
                )
            else:
                self._conn = http.client.HTTPConnection(
                    self._host, self._port, timeout=self._timeout
                )
        return self._conn

    def call(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, Any]] = (),
        body: Any = None,
        timeout: float | None = None,
    ) -> Any:
        """One request; the decoded JSON answer, or the server's error raised as its class."""
        status, _headers, data = self._request(method, path, query, body, timeout)
        if status >= 300:
            raise self._error(status, data)
        try:
            return json.loads(data)
        except ValueError:
            raise StoreError(
                f"the server at {self.url_shown} answered HTTP {status} with something other"
                " than JSON",
                hint="check that CREDWARDEN_URL points at `credwarden serve`",
            ) from None

    def _request(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, Any]],
        body: Any,
        timeout: float | None,
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        target = self._prefix + path
        pairs = [(k, v) for k, v in query if v is not None]
        if pairs:
            target += "?" + urllib.parse.urlencode(pairs)
        headers = {
            "Authorization": f"Bearer {self._token.reveal()}",
            "User-Agent": self._agent,
            "Accept": "application/json",
        }
        payload = None
        if body is not None:
            payload = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        wait = self._timeout if timeout is None else max(self._timeout, timeout)
        with self._lock:
            if (
                method != "GET"
                and self._conn is not None
                and time.monotonic() - self._last_use > IDLE_REOPEN_S
            ):
                self.close()
            for attempt in (1, 2):
                conn = self._connection()
                fresh = conn.sock is None
                conn.timeout = wait
                if conn.sock is not None:
                    conn.sock.settimeout(wait)
                try:
                    conn.request(method, target, body=payload, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    self._last_use = time.monotonic()
                    if resp.will_close:
                        self.close()
                    return resp.status, resp.msg, data
                except _DROPPED:
                    self.close()
                    if attempt == 1 and not fresh and method == "GET":
                        continue  # the server closed the idle keep-alive connection: once more
                    if fresh and method == "GET":
                        self._unreachable("the connection was reset")
                    raise StoreError(
                        f"the connection to {self.url_shown} dropped before an answer",
                        hint="the change may or may not have been made: look, then retry",
                    ) from None
                except BaseException as exc:
                    self.close()
                    self._raise_transport(exc, wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _raise_transport(self, exc: BaseException, wait: float) -> NoReturn:
        if isinstance(exc, ConnectionRefusedError):
            self._unreachable("connection refused")
        if isinstance(exc, TimeoutError):
            raise StoreError(
                f"the credwarden server at {self.url_shown} did not answer within {wait:g} s",
                hint="is it overloaded or behind a firewall? raise CREDWARDEN_TIMEOUT if needed",
            ) from None
        import ssl

        if isinstance(exc, ssl.SSLCertVerificationError):
            raise StoreError(
                f"the TLS certificate of {self.url_shown} could not be verified"
                f" ({exc.verify_message})",
                hint="set SSL_CERT_FILE to the CA bundle that signed it",
            ) from None
        if isinstance(exc, ssl.SSLError):
            raise StoreError(
                f"TLS with {self.url_shown} failed ({exc.reason or 'handshake'})",
                hint="check the scheme (https vs http) and port of CREDWARDEN_URL",
            ) from None
        if isinstance(exc, http.client.HTTPException):
            # Never its text: it may quote what the other end sent.
            raise StoreError(
                f"the server at {self.url_shown} answered something that is not HTTP"
                f" ({type(exc).__name__})",
                hint="check the scheme and port of CREDWARDEN_URL",
            ) from None
        if isinstance(exc, OSError):
            self._unreachable(exc.strerror or type(exc).__name__)
        raise exc

    def _unreachable(self, why: str) -> NoReturn:
        raise StoreError(
            f"cannot reach the credwarden server at {self.url_shown}: {why}",
            hint="is `credwarden serve` running? check CREDWARDEN_URL",
        ) from None

    def _error(self, status: int, data: bytes) -> CredwardenError:
        """The server's error as the exception the local facade would raise."""
        d: Any = None
        with contextlib.suppress(ValueError):
            d = json.loads(data)
        code = _text(d, "code", 64) if isinstance(d, dict) else None
        message = _text(d, "message", 1000) if isinstance(d, dict) else None
        if code is None or message is None:
            # Not our error shape (a proxy's page?): never echo the body.
            where = f"the server at {self.url_shown}"
            if status == 401:
                return Unauthenticated(
                    f"{where} refused the token (HTTP 401)",
                    hint="check CREDWARDEN_TOKEN (credwarden principal token NAME)",
                )
            if status == 403:
                return PermissionDenied(f"{where} refused the request (HTTP 403)")
            if status == 429:
                return RateLimited(f"{where} asks to slow down (HTTP 429)")
            return StoreError(
                f"{where} answered HTTP {status}",
                hint="check CREDWARDEN_URL points at `credwarden serve`; see the server's log",
            )
        hint = _text(d, "hint", 1000)
        if status == 404 and code == "no_route":
            return StoreError(
                f"the server at {self.url_shown} has no such route",
                hint="is it an older credwarden? check CREDWARDEN_URL (and its path)",
            )
        by_code, by_exit = _error_classes()
        cls = by_code.get(code)
        if cls is None:
            if status >= 500:
                return StoreError(
                    f"the server at {self.url_shown} failed (HTTP {status}, {code})",
                    hint=hint or "see the server's log",
                )
            exit_code = d.get("exit_code")
            cls = by_exit.get(exit_code if isinstance(exit_code, int) else -1, CredwardenError)
        return _make_error(cls, message, hint)
