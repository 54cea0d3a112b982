"""The REST API: every facade operation under /v1, authenticated by bearer token, one error shape.

`create_app` composes one router per resource (`routers/`); each route is a row of the
route table (`routes.py`). Routes parse, call the facade as the authenticated principal,
and render; the facade checks the grants and writes the audit event. Reads of values and
tokens (the workflow hot path) are `async` and group-commit their events off the loop;
everything else runs in the thread pool.
"""

from __future__ import annotations

from fastapi import FastAPI

from ..warden import Warden
from . import handlers, metrics
from .auth import FailureBrake
from .limits import BodyLimit, Timing
from .routers import access, audit, connections, credentials, environments, health, reports, use
from .routers.connections import CALLBACK_PATH, check_public_url

MAX_BODY = 1 << 20
ROUTERS = (
    credentials.router,
    use.router,
    connections.router,
    environments.router,
    access.router,
    reports.router,
    audit.router,
    health.router,
    connections.callback,
)


def create_app(
    warden: Warden, *, brake: FailureBrake | None = None, public_url: str | None = None
) -> FastAPI:
    """The API over one opened facade (shared by every request). `public_url` is where
    browsers reach this server (its OAuth redirect URI is `<public_url>/oauth/callback`);
    without it, connecting through the server is refused."""
    warden.event_hook = metrics.count
    app = FastAPI(
        title="credwarden",
        version="1",
        description="Credentials for workflows: encrypted, refreshed, least-privilege, audited.",
        docs_url=None,
        redoc_url=None,
        # A path with a trailing slash is just an unknown path: a redirect would be built
        # from the request's Host header (an open redirect to wherever the caller names).
        redirect_slashes=False,
    )
    app.state.warden = warden
    app.state.brake = brake or FailureBrake()
    app.state.public_url = check_public_url(public_url) if public_url else None
    for router in ROUTERS:
        app.include_router(router)
    handlers.install(app)
    app.add_middleware(Timing)
    app.add_middleware(BodyLimit, limit=MAX_BODY)
    return app


__all__ = ["CALLBACK_PATH", "MAX_BODY", "check_public_url", "create_app"]
