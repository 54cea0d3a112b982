"""Calls to a provider's token, device and revocation endpoints (RFC 6749, 8628, 7009) with httpx.

Hand-written on httpx rather than through authlib's client: the refresh
coordinator must tell transient failures (5xx, 429, timeouts: keep serving,
back off) from a dead grant (`invalid_grant`: re-check, then needs_reauth), and
must never let a token or secret reach an exception message.
"""

from __future__ import annotations

import atexit
import base64
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple
from urllib.parse import quote

import httpx

from ..errors import CredentialInvalid, CredwardenError
from .tokens import ProtocolError

TIMEOUT = httpx.Timeout(15.0, connect=5.0)
MAX_BODY = 256 * 1024


class ClientAuth(NamedTuple):
    client_id: str
    client_secret: str | None
    method: str  # client_secret_basic | client_secret_post | none

    def __repr__(self) -> str:
        return f"ClientAuth(client_id={self.client_id!r}, method={self.method!r}, <secret hidden>)"


class Transient(CredwardenError):
    """The provider could not answer now (network, timeout, 5xx, 429): retry later."""

    code = "provider_unavailable"


class OAuthError(CredentialInvalid):
    """The provider refused: `error` as on the wire (invalid_grant, invalid_client, ...)."""

    code = "oauth_error"

    def __init__(self, error: str, description: str | None, status: int, *, hint: str) -> None:
        text = f"the provider refused: {error}"
        if description:
            text += f" ({description})"
        super().__init__(text, hint=hint)
        self.error = error
        self.description = description
        self.status = status


_HINTS = {
    "invalid_grant": "the grant was revoked or expired; reconnect with `credwarden connect`",
    "invalid_client": "the client id or secret is wrong; check the oauth2_client credential",
    "unauthorized_client": "the app may not use this grant type; check its settings",
    "invalid_scope": "a requested scope is unknown or not allowed for this app",
    "access_denied": "the user or an admin declined",
}


def _safe(text: object, limit: int = 200) -> str | None:
    if not isinstance(text, str) or not text:
        return None
    clean = "".join(c if c.isprintable() else " " for c in text)
    return clean[:limit]


_SHARED: httpx.Client | None = None
_SHARED_LOCK = threading.Lock()


@contextmanager
def client_for() -> Iterator[httpx.Client]:
    """The process's HTTP client for token endpoints: made once (its TLS context alone costs
    ~45 ms), thread-safe, pooled; `with` does not close it."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = httpx.Client(timeout=TIMEOUT, follow_redirects=False)
            atexit.register(_SHARED.close)
    yield _SHARED


def post_form(
    http: httpx.Client, url: str, data: dict[str, str], auth: ClientAuth | None
) -> dict[str, Any]:
    """POST a form to an OAuth endpoint and return its JSON object, or raise a clear error."""
    headers, body = _client_headers(data, auth)
    try:
        response = http.post(url, data=body, headers=headers)
    except httpx.TimeoutException:
        raise Transient(f"the provider at {_host(url)} did not answer in time") from None
    except httpx.HTTPError as exc:
        raise Transient(
            f"cannot reach the provider at {_host(url)}: {type(exc).__name__}",
            hint="check the network and the provider's status page",
        ) from None
    return parse_response(response, url)


def _client_headers(
    data: dict[str, str], auth: ClientAuth | None
) -> tuple[dict[str, str], dict[str, str]]:
    """Client authentication (RFC 6749 §2.3.1): HTTP Basic, or in the body."""
    headers = {"Accept": "application/json"}
    body = dict(data)
    if auth is not None:
        if auth.method == "client_secret_basic" and auth.client_secret is not None:
            pair = f"{quote(auth.client_id, safe='')}:{quote(auth.client_secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            body["client_id"] = auth.client_id
            if auth.method == "client_secret_post" and auth.client_secret is not None:
                body["client_secret"] = auth.client_secret
    return headers, body


def parse_response(response: httpx.Response, url: str) -> dict[str, Any]:
    status = response.status_code
    if status >= 500 or status == 429:
        raise Transient(
            f"the provider at {_host(url)} answered {status}",
            hint="it may be down or rate limiting; credwarden retries with back-off",
        )
    kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
    payload: Any = None
    if len(response.content) <= MAX_BODY:
        try:
            payload = response.json()
        except ValueError:
            payload = None
    if not isinstance(payload, dict):
        raise ProtocolError(
            f"the provider at {_host(url)} answered {status} with {kind or 'no content type'},"
            " not a JSON object",
            hint="check the endpoint URL in the provider definition (`credwarden providers show`)",
        )
    if status >= 400 or "error" in payload:
        error = _safe(payload.get("error")) or f"http_{status}"
        raise OAuthError(
            error,
            _safe(payload.get("error_description")),
            status,
            hint=_HINTS.get(error, "see the provider's documentation for this error"),
        )
    return payload


def _host(url: str) -> str:
    try:
        return httpx.URL(url).host or url[:60]
    except httpx.InvalidURL:
        return url[:60]
