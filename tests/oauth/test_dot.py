"""A second, independent provider (django-oauth-toolkit): code flow with PKCE, rotating refresh,
and revocation when the connection is removed."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest

from credwarden import Warden
from credwarden.providers import save_user_provider
from tests.peers.dot import DotProvider

CONN = "dev/dot/main"


@pytest.fixture
def dot() -> Iterator[DotProvider]:
    with DotProvider(access_ttl=600) as provider:
        yield provider


def test_code_flow_refresh_and_revocation(warden: Warden, dot: DotProvider) -> None:
    save_user_provider(
        warden.settings.home,
        "dot",
        {
            "name": "django-oauth-toolkit",
            "auth": ["oauth2"],
            "docs": "https://example.com/dot",
            "oauth2": {
                "authorization_url": dot.authorize_url,
                "token_url": dot.token_url,
                "revocation_url": dot.revoke_url,
                "pkce": "required",
                "scopes_default": ["read"],
            },
        },
    )
    warden.add(
        "dev/dot/app",
        "oauth2_client",
        {
            "client_id": dot.auth_code_client_id,
            "client_secret": dot.auth_code_client_secret,
            "auth_method": "client_secret_post",
        },
    )

    def open_url(url: str) -> None:
        def run() -> None:
            redirect = dot.drive_authorization(url)
            with httpx.Client(trust_env=False) as http:
                http.get(redirect)

        threading.Thread(target=run, daemon=True).start()

    warden.connect(CONN, provider="dot", client="dev/dot/app", open_url=open_url, timeout=30)
    first = warden.access_token(CONN).reveal()
    assert dot.introspect(first)["active"] is True

    second = warden.access_token(CONN, leeway=3600).reveal()  # forces a refresh
    assert second != first and dot.count("refresh_token") == 1
    assert dot.introspect(second)["active"] is True
    refresh = warden.read(CONN).values["refresh_token"]

    assert warden.remove(CONN) == "revoked"
    assert dot.introspect(second)["active"] is False
    # The rotated refresh token was revoked too: nothing of the grant is left at the provider.
    with httpx.Client(trust_env=False) as http:
        r = http.post(
            dot.token_url,
            data={
                "grant_type": "refresh_token",
                "refresh_token": refresh.reveal(),  # type: ignore[union-attr]
                "client_id": dot.auth_code_client_id,
                "client_secret": dot.auth_code_client_secret,
            },
        )
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
