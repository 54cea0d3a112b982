"""Fixtures for OAuth tests: a real oidc-provider on loopback, a store, a client and a connection.

The provider is third-party code (npm `oidc-provider`) with rotating refresh tokens: a refresh
token used twice revokes the whole grant, so any double refresh shows up as a dead connection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from credwarden import Warden
from credwarden.providers import provider_from_discovery, save_user_provider
from tests.peers.oidc import DEVICE_CODE_GRANT, OidcProvider, confidential_client, require_node

CLIENT = "dev/acme/app"
SERVICE = "dev/acme/svc"
CONN = "dev/acme/main"
APP_SECRET = "CANARY-app-secret-8d1c"
SVC_SECRET = "CANARY-svc-secret-51aa"
SCOPES = ["openid", "offline_access", "api:read"]


def start_provider(**kw: Any) -> OidcProvider:
    require_node()
    clients = [
        confidential_client(
            "app",
            APP_SECRET,
            grant_types=("authorization_code", "refresh_token", DEVICE_CODE_GRANT),
        ),
        confidential_client("svc", SVC_SECRET, grant_types=("client_credentials",)),
    ]
    return OidcProvider(clients, **kw).start()


@pytest.fixture
def provider_factory() -> Iterator[Callable[..., OidcProvider]]:
    started: list[OidcProvider] = []

    def make(**kw: Any) -> OidcProvider:
        kw.setdefault("access_ttl", 600)  # well beyond the default 60 s leeway
        p = start_provider(**kw)
        started.append(p)
        return p

    yield make
    for p in started:
        p.stop()


def register(w: Warden, p: OidcProvider, slug: str = "acme") -> None:
    """The provider as a user would add it: from its discovery document; plus the two clients."""
    with httpx.Client(trust_env=False) as http:
        doc = http.get(p.discovery_url).json()
    save_user_provider(w.settings.home, slug, provider_from_discovery(slug, doc), replace=True)
    w.add(CLIENT, "oauth2_client", {"client_id": "app", "client_secret": APP_SECRET})
    w.add(SERVICE, "oauth2_client", {"client_id": "svc", "client_secret": SVC_SECRET})


def browser(p: OidcProvider, **kw: Any) -> Callable[[str], None]:
    """An `open_url` that plays the user in a thread and follows the redirect to our listener."""

    def open_url(url: str) -> None:
        def run() -> None:
            redirect = p.drive_authorization(url, **kw)
            with httpx.Client(trust_env=False) as http:
                http.get(redirect)

        threading.Thread(target=run, daemon=True).start()

    return open_url


def connect(w: Warden, p: OidcProvider, address: str = CONN) -> None:
    w.connect(
        address, provider="acme", client=CLIENT, scopes=SCOPES, open_url=browser(p), timeout=30
    )


@pytest.fixture
def home_path(warden: Warden) -> Path:
    return Path(warden.settings.home)
