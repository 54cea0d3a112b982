"""Connecting against a real provider: code + PKCE, client credentials, device code, repair in
place, and the bad inputs that must leave nothing half-connected."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import pytest

from credwarden import CredentialInvalid, Warden
from credwarden.errors import CredwardenError
from credwarden.providers import save_user_provider
from tests.oauth.conftest import (
    APP_SECRET,
    CLIENT,
    CONN,
    SCOPES,
    SERVICE,
    SVC_SECRET,
    browser,
    connect,
    register,
)
from tests.peers.oidc import introspect


def test_code_flow_with_pkce_stores_a_working_connection(warden: Warden, provider_factory) -> None:  # type: ignore[no-untyped-def]
    p = provider_factory()
    register(warden, p)
    connect(warden, p)
    info = warden.describe(CONN)
    assert info.kind == "oauth2" and info.provider == "acme" and info.health == "ok"
    assert set(info.fields["scope"].split()) >= {"openid", "offline_access"}  # type: ignore[union-attr]
    assert info.fields["refresh_token"] is None  # secret: masked
    token = warden.access_token(CONN).reveal()
    assert introspect(p, token, "app", APP_SECRET)["active"] is True
    assert p.count("authorization_code") == 1
    assert warden.headers(CONN)["Authorization"].reveal() == f"Bearer {token}"
    # Invariant 1: neither the tokens nor the client secret are in the store in plaintext,
    # nor in the audit events.
    from tests.rawdb import stored_bytes

    refresh = warden.read(CONN).values["refresh_token"].reveal()  # type: ignore[union-attr]
    raw = stored_bytes(warden.settings.database_url)
    for canary in (token, refresh, APP_SECRET):
        assert canary.encode() not in raw
    assert APP_SECRET not in str([e.to_dict() for e in warden.audit_events()])


def test_connecting_again_repairs_in_place(warden: Warden, provider_factory) -> None:  # type: ignore[no-untyped-def]
    p = provider_factory()
    register(warden, p)
    connect(warden, p)
    before = warden.describe(CONN)
    connect(warden, p)
    after = warden.describe(CONN)
    assert after.id == before.id and after.version == before.version + 1
    assert [v.note for v in warden.history(CONN)][:2] == ["reconnected", "connected"]


def test_client_credentials(warden: Warden, provider_factory) -> None:  # type: ignore[no-untyped-def]
    p = provider_factory()
    register(warden, p)
    warden.connect(
        "dev/acme/machine",
        provider="acme",
        client=SERVICE,
        scopes=["api:read"],
        grant="client_credentials",
    )
    token = warden.access_token("dev/acme/machine", leeway=5).reveal()
    assert introspect(p, token, "svc", SVC_SECRET)["active"] is True
    # "Refreshing" a client-credentials connection asks for a new token with the same grant.
    again = warden.access_token("dev/acme/machine", leeway=3600).reveal()
    assert again != token and p.count("client_credentials") == 2


def test_device_code(warden: Warden, provider_factory) -> None:  # type: ignore[no-untyped-def]
    p = provider_factory()
    register(warden, p)
    shown: list[dict[str, Any]] = []

    def show(device: dict[str, Any]) -> None:
        shown.append(device)
        threading.Thread(
            target=p.complete_device_authorization,
            args=(device["verification_uri_complete"],),
            daemon=True,
        ).start()

    warden.connect(
        CONN, provider="acme", client=CLIENT, scopes=SCOPES, grant="device_code", show_device=show
    )
    assert shown and shown[0]["user_code"]
    assert introspect(p, warden.access_token(CONN).reveal(), "app", APP_SECRET)["active"]


def _nothing_stored(w: Warden) -> None:
    assert [i.address for i in w.list(kind="oauth2")] == []


def test_denied_authorization_stores_nothing(warden: Warden, provider_factory) -> None:  # type: ignore[no-untyped-def]
    p = provider_factory()
    register(warden, p)
    with pytest.raises(CredentialInvalid, match="access_denied"):
        warden.connect(
            CONN,
            provider="acme",
            client=CLIENT,
            scopes=SCOPES,
            open_url=browser(p, deny=True),
            timeout=30,
        )
    _nothing_stored(warden)


def test_wrong_state_stores_nothing(warden: Warden, provider_factory) -> None:  # type: ignore[no-untyped-def]
    p = provider_factory()
    register(warden, p)

    def forged(url: str) -> None:
        redirect = httpx.URL(url).params["redirect_uri"]

        def run() -> None:
            with httpx.Client(trust_env=False) as http:
                http.get(redirect, params={"code": "stolen", "state": "not-ours"})

        threading.Thread(target=run, daemon=True).start()

    with pytest.raises(CredentialInvalid, match="wrong state"):
        warden.connect(
            CONN, provider="acme", client=CLIENT, scopes=SCOPES, open_url=forged, timeout=30
        )
    assert p.count("authorization_code") == 0
    _nothing_stored(warden)


class _FakeTokenEndpoint(BaseHTTPRequestHandler):
    """A misbehaving token endpoint (the outside world misbehaving, not our code)."""

    answer: tuple[int, str, bytes] = (200, "application/json", b"{}")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, kind, body = self.answer
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_endpoint(warden: Warden) -> Iterator[type[_FakeTokenEndpoint]]:
    handler = type("H", (_FakeTokenEndpoint,), {})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    save_user_provider(
        warden.settings.home,
        "weird",
        {
            "name": "Weird",
            "auth": ["oauth2"],
            "docs": "https://example.com/docs",
            "oauth2": {"authorization_url": f"{base}/auth", "token_url": f"{base}/token"},
        },
    )
    warden.add(SERVICE, "oauth2_client", {"client_id": "svc", "client_secret": SVC_SECRET})
    yield handler
    server.shutdown()
    thread.join()
    server.server_close()


def test_html_instead_of_json_is_a_clear_error(warden: Warden, fake_endpoint) -> None:  # type: ignore[no-untyped-def]
    fake_endpoint.answer = (200, "text/html", b"<html><body>Login</body></html>")
    with pytest.raises(CredwardenError, match="not a JSON object") as info:
        warden.connect(
            "dev/weird/main", provider="weird", client=SERVICE, grant="client_credentials"
        )
    assert "text/html" in info.value.message
    _nothing_stored(warden)


def test_token_without_expires_in_is_kept_without_expiry(warden: Warden, fake_endpoint) -> None:  # type: ignore[no-untyped-def]
    fake_endpoint.answer = (
        200,
        "application/json",
        json.dumps({"access_token": "tok-1", "token_type": "bearer"}).encode(),
    )
    warden.connect("dev/weird/main", provider="weird", client=SERVICE, grant="client_credentials")
    assert "expires_at" not in warden.describe("dev/weird/main").fields
    assert warden.access_token("dev/weird/main").reveal() == "tok-1"


def test_provider_error_names_the_oauth_error(warden: Warden, fake_endpoint) -> None:  # type: ignore[no-untyped-def]
    fake_endpoint.answer = (
        401,
        "application/json",
        json.dumps({"error": "invalid_client"}).encode(),
    )
    with pytest.raises(CredentialInvalid, match="invalid_client") as info:
        warden.connect(
            "dev/weird/main", provider="weird", client=SERVICE, grant="client_credentials"
        )
    assert info.value.exit_code == 7 and "client id or secret" in (info.value.hint or "")
    _nothing_stored(warden)
