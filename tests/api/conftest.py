"""The REST API over a seeded store (SQLite and PostgreSQL): credentials, principals, tokens,
and sync clients over the real server front (`api.server.build`) and the bare framework app.

Principals (each with one API token):

* `admin`    role admin (on `*`, and on each protected environment by name)
* `editor-p` role editor on `*` and on `prod/*`
* `runner-p` actions read,use on `prod/stripe/*`
* `viewer-p` role viewer on `*` (so never `prod`: protected)
* `nobody`   no grants

Every secret value seeded holds CANARY, so a leak anywhere is a substring search.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from credwarden import Warden
from credwarden.api.app import create_app
from credwarden.api.server import build
from credwarden.timeutil import iso, utcnow
from tests.conftest import CANARY

USER_AGENT = "credwarden-api-tests/1"
PRINCIPALS = ("admin", "editor-p", "runner-p", "viewer-p", "nobody")

# Seeded secret values, each unique and each carrying CANARY.
SECRETS: dict[str, str] = {
    "prod/stripe/billing": f"{CANARY}-prod-stripe-billing-v2",
    "prod/stripe/billing@v1": f"{CANARY}-prod-stripe-billing-v1",
    "dev/stripe/billing": f"{CANARY}-dev-stripe-billing",
    "prod/slack/alerts": f"{CANARY}-prod-slack-alerts",
    "dev/app/db-password": f"{CANARY}-dev-app-db-password",
    "prod/stripe/oauth": f"{CANARY}-prod-stripe-oauth-access",
    "prod/stripe/oauth#refresh": f"{CANARY}-prod-stripe-oauth-refresh",
    "prod/stripe/app": f"{CANARY}-prod-stripe-app-client-secret",
}
PUBLIC_URL = "http://testserver"  # the test client's base URL: OAuth redirects come back here


class Api:
    """The seeded store and what tests need to call it as each principal."""

    def __init__(self, warden: Warden) -> None:
        self.warden = warden
        self.tokens: dict[str, str] = {}
        self.token_ids: dict[str, str] = {}

    def auth(self, principal: str) -> dict[str, str]:
        """Headers of a call as `principal` (with the test user agent)."""
        return {"Authorization": f"Bearer {self.tokens[principal]}", "User-Agent": USER_AGENT}

    def events(self, **filters: Any) -> list[dict[str, Any]]:
        """Audit events as the local owner sees them (bypassing the API), without the events
        of these look-ups themselves (the owner's `audit.read`)."""
        owner = self.warden.principal.name
        return [
            e.to_dict()
            for e in self.warden.audit_events(**filters)
            if not (e.action == "audit.read" and e.principal == owner)
        ]


def seed(w: Warden) -> Api:
    api = Api(w)
    w.add("prod/stripe/billing", "api_key", {"api_key": SECRETS["prod/stripe/billing@v1"]})
    w.update("prod/stripe/billing", fields={"api_key": SECRETS["prod/stripe/billing"]})
    w.add("dev/stripe/billing", "api_key", {"api_key": SECRETS["dev/stripe/billing"]})
    w.add("prod/slack/alerts", "api_key", {"api_key": SECRETS["prod/slack/alerts"]})
    w.add(
        "dev/app/db-password",
        "secret",
        {"value": SECRETS["dev/app/db-password"], "env_var": "DB_PASSWORD"},
    )
    w.add(
        "prod/stripe/app",
        "oauth2_client",
        {"client_id": "stripe-app", "client_secret": SECRETS["prod/stripe/app"]},
    )
    w.add(
        "prod/stripe/oauth",
        "oauth2",
        {
            "access_token": SECRETS["prod/stripe/oauth"],
            "refresh_token": SECRETS["prod/stripe/oauth#refresh"],
            "token_type": "Bearer",
            # Fresh for a day: /token answers from the store, never from the network.
            "expires_at": iso(utcnow() + timedelta(days=1)),
            "client": "prod/stripe/app",
            "grant": "authorization_code",
            "token_url": "https://oauth.invalid/token",
        },
    )
    w.add_principal("admin", type="user", role="admin")
    w.add_principal("editor-p", role="editor")
    w.grant("editor-p", "prod/*", role="editor")
    w.add_principal("runner-p")
    w.grant("runner-p", "prod/stripe/*", actions="read,use")
    w.add_principal("viewer-p", role="viewer")
    w.add_principal("nobody")
    for name in PRINCIPALS:
        rec, token = w.issue_token(name, description=f"tests: {name}")
        api.tokens[name] = token.reveal()
        api.token_ids[name] = rec["id"]
    return api


@pytest.fixture
def api(warden: Warden) -> Api:
    """The seeded store (both backends)."""
    return seed(warden)


@pytest.fixture
def client(api: Api) -> Iterator[TestClient]:
    """A sync client over the real server front (FastReads in front of the framework app)."""
    app = build(api.warden, public_url=PUBLIC_URL)
    with TestClient(app, headers={"User-Agent": USER_AGENT}) as c:
        yield c


@pytest.fixture
def framework_client(api: Api) -> Iterator[TestClient]:
    """A sync client over the bare FastAPI app (every request through the framework)."""
    app = create_app(api.warden, public_url=PUBLIC_URL)
    with TestClient(app, headers={"User-Agent": USER_AGENT}) as c:
        yield c
