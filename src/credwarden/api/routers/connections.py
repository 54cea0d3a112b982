"""OAuth connections made through the server: start a flow, poll where it stands, and the
browser's redirect back (`/oauth/callback`, unauthenticated: the state is the capability)."""

from __future__ import annotations

import html
import logging
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse

from ...errors import CredwardenError, UsageError
from ..bodies import ConnectStart
from ..calls import As, Seg, address, route, v1_router

router = v1_router("connections")
callback = APIRouter(redirect_slashes=False)

CALLBACK_PATH = "/oauth/callback"
_PAGE = """<!doctype html><meta charset="utf-8"><title>credwarden</title>
<body style="font-family:sans-serif;margin:3em"><h1>{title}</h1><p>{text}</p></body>"""
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
}
MAX_PARAMS = 50
MAX_PARAM = 8192


def check_public_url(url: str) -> str:
    """The server's public base URL (where browsers reach it), without a trailing slash."""
    value = url.strip().rstrip("/")
    try:
        parts = urlsplit(value)
        ok = (
            parts.scheme in ("http", "https")
            and bool(parts.hostname)
            and parts.username is None
            and parts.password is None
            and not parts.query
            and not parts.fragment
            and len(value) <= 1000
        )
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        ok = False
    if not ok:
        raise UsageError(
            f"the public URL {value[:100]!r} is not an http(s) base URL",
            hint="e.g. https://credwarden.example.com (no query, fragment or user info)",
        )
    return value


@route(
    router,
    "connect.start",
    summary="Start an OAuth connection whose redirect comes to this server (write)",
    status_code=201,
)
def connect_start(
    a: As, env: Seg, service: Seg, name: Seg, body: ConnectStart, request: Request
) -> dict[str, Any]:
    base = request.app.state.public_url
    if not base:
        raise UsageError(
            "this server has no public URL for OAuth redirects",
            hint="start it with `credwarden serve --public-url https://HOST`",
        )
    out = a.run(
        lambda w: w.connect_start(
            address(env, service, name),
            provider=body.provider,
            client=body.client,
            scopes=body.scopes,
            redirect_uri=base + CALLBACK_PATH,
            template_vars=body.vars,
        )
    )
    return dict(out)


@route(
    router,
    "connect.status",
    summary="Where a connect started here stands: pending, done, failed, expired, unknown",
)
def connect_status(a: As, flow: Annotated[str, Path(pattern="^[0-9a-f]{64}$")]) -> dict[str, Any]:
    return dict(a.run(lambda w: w.connect_status(flow)))


def _page(status: int, title: str, text: str) -> HTMLResponse:
    body = _PAGE.format(title=html.escape(title), text=html.escape(text))
    return HTMLResponse(body, status_code=status, headers=_PAGE_HEADERS)


@callback.get(CALLBACK_PATH, include_in_schema=False, response_class=HTMLResponse)
def oauth_callback(request: Request) -> HTMLResponse:
    """Finish the flow the redirect's state names, as the principal who started it."""
    warden, brake = request.app.state.warden, request.app.state.brake
    ip = request.client.host if request.client else "unknown"
    client: dict[str, Any] = {"ip": ip, "via": "oauth_callback"}
    agent = request.headers.get("user-agent")
    if agent:
        client["user_agent"] = agent[:200]
    query: dict[str, str] = {}
    for k, v in request.query_params.multi_items()[:MAX_PARAMS]:
        if k in query or len(v) > MAX_PARAM:  # RFC 6749 §3.1: no parameter twice
            return _page(400, "Not connected", "The redirect is malformed.")
        query[k] = v
    if brake.blocked(ip):
        return _page(429, "Not connected", "Too many failed attempts: wait a minute.")
    state = query.get("state")
    if not state:
        if "error" in query:
            return _page(400, "Not connected", "The provider did not grant the authorization.")
        return _page(400, "Not connected", "The redirect carried no state.")
    try:
        info = warden.connect_finish(state, query, client=client)
    except CredwardenError as exc:
        if isinstance(exc, UsageError) and brake.failed(ip):
            warden.note_lockout(ip, client)
        text = exc.message
        for value in (query.get("code"), state):
            if value:
                text = text.replace(value, "...")
        return _page(400, "Not connected", text[:300])
    except Exception as exc:
        logging.getLogger("credwarden.api").error(
            "internal error in the OAuth callback: %s", type(exc).__name__
        )
        return _page(500, "Not connected", "Internal error: see the server log.")
    return _page(200, "Connected", f"Connected {info.address}. You can close this window.")
