"""The loopback redirect listener for native apps (RFC 8252 §7.3): one callback, then close."""

from __future__ import annotations

import html
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..errors import CredentialInvalid, UsageError
from ..interrupts import quiet_thread, wait_event

PAGE = """<!doctype html><meta charset="utf-8"><title>credwarden</title>
<body style="font-family:sans-serif;margin:3em"><h1>{title}</h1><p>{text}</p>
<p>You may close this window.</p></body>"""


class _Handler(BaseHTTPRequestHandler):
    server: CallbackServer

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path != "/callback":
            self._answer(404, "Not found", "This is credwarden's OAuth callback.")
            return
        query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        if "error" in query:
            self._answer(
                400, "Authorization was not granted", html.escape(query.get("error", ""))[:100]
            )
        elif query.get("state") != self.server.expected_state:
            self._answer(400, "Wrong state", "This response does not belong to this request.")
        else:
            self._answer(200, "Connected", "credwarden received the authorization.")
        self.server.deliver(query)

    def _answer(self, status: int, title: str, text: str) -> None:
        body = PAGE.format(title=html.escape(title), text=text).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence: the query string carries the authorization code."""


class CallbackServer(HTTPServer):
    """Listens on 127.0.0.1:PORT until the first /callback request arrives."""

    def __init__(self, port: int, expected_state: str) -> None:
        try:
            super().__init__(("127.0.0.1", port), _Handler)
        except OSError as exc:
            raise UsageError(
                f"cannot listen on 127.0.0.1:{port} for the OAuth redirect ({exc.strerror})",
                hint="choose another --port (the app's registered redirect URI must match)",
            ) from None
        self.expected_state = expected_state
        self._result: dict[str, str] | None = None
        self._done = threading.Event()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/callback"

    def deliver(self, query: dict[str, str]) -> None:
        self._result = query
        self._done.set()

    def wait(self, timeout: float) -> dict[str, str]:
        """Serve until the callback arrives; check its state and error."""
        thread = quiet_thread(lambda: self.serve_forever(poll_interval=0.05))
        thread.start()
        try:
            if not wait_event(self._done, timeout):
                raise CredentialInvalid(
                    f"no authorization arrived within {timeout:g} s",
                    hint="open the URL, approve, and make sure the redirect reaches this port",
                )
        finally:
            self.shutdown()
            thread.join()
            self.server_close()
        query = self._result or {}
        if "error" in query:
            error = query["error"][:60]
            raise CredentialInvalid(
                f"the provider did not authorize: {error}",
                hint="access_denied means the user (or an admin policy) declined",
            )
        if query.get("state") != self.expected_state:
            raise CredentialInvalid(
                "the redirect carried a wrong state: it does not answer this request",
                hint="start connect again; if it repeats, something else is using this port",
            )
        if not query.get("code"):
            raise CredentialInvalid("the redirect carried no authorization code")
        return query
