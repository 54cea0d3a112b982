"""A dead grant becomes needs_reauth after one attempt; a provider hiccup keeps serving a
token that is still valid; an API's 401 triggers one refresh and one retry."""

from __future__ import annotations

import httpx
import pytest

from credwarden import CredentialInvalid, Warden
from tests.oauth.conftest import APP_SECRET, CONN, connect, register
from tests.peers.oidc import introspect
from tests.sinks import ListSink


def _revoke_grant(p, w: Warden) -> None:  # type: ignore[no-untyped-def]
    refresh = w.read(CONN).values["refresh_token"]
    with httpx.Client(trust_env=False) as http:
        r = http.post(
            p.revocation_url,
            data={
                "token": refresh.reveal(),  # type: ignore[union-attr]
                "token_type_hint": "refresh_token",
            },
            auth=("app", APP_SECRET),
        )
        assert r.status_code == 200


def test_revoked_grant_needs_reauth_after_one_attempt(warden: Warden, provider_factory) -> None:  # type: ignore[no-untyped-def]
    p = provider_factory()
    register(warden, p)
    connect(warden, p)
    _revoke_grant(p, warden)
    sink = warden.alerts = ListSink()
    with pytest.raises(CredentialInvalid, match="re-authentication") as info:
        warden.access_token(CONN, leeway=3600)
    assert info.value.exit_code == 7
    assert p.count("refresh_token") == 1
    assert warden.describe(CONN).health == "needs_reauth"
    assert sink.alerts == [("needs_reauth", CONN)]
    with pytest.raises(CredentialInvalid):
        warden.access_token(CONN)
    assert p.count("refresh_token") == 1  # no second attempt against a dead grant
    events = [e for e in warden.audit_events(address=CONN) if e.action == "refresh"]
    assert events[-1].detail.get("health") == "needs_reauth"
    connect(warden, p)  # repaired in place
    assert warden.describe(CONN).health == "ok"
    assert warden.access_token(CONN).reveal()


def test_transient_error_keeps_serving_a_valid_token(warden: Warden, provider_factory) -> None:  # type: ignore[no-untyped-def]
    p = provider_factory()
    register(warden, p)
    connect(warden, p)
    token = warden.access_token(CONN).reveal()
    p.control(fail_next_token=1)
    # Within the leeway, not yet expired: the refresh fails with 503, the old token is served.
    assert warden.access_token(CONN, leeway=3600).reveal() == token
    # Backing off: no new attempt right away, the still-valid token again.
    assert warden.access_token(CONN, leeway=3600).reveal() == token
    assert p.count("refresh_token") == 1
    results = [e.result for e in warden.audit_events(address=CONN) if e.action == "refresh"]
    assert results == ["error"]


def test_httpx_auth_refreshes_once_on_401(warden: Warden, provider_factory) -> None:  # type: ignore[no-untyped-def]
    p = provider_factory(access_ttl=300)
    register(warden, p)
    connect(warden, p)
    seen: list[str] = []

    old = warden.access_token(CONN).reveal()

    # The provider's API is the outside world we cannot run: this stand-in refuses the token it
    # saw first (as an API does after an early rotation) and accepts what the real provider
    # says is active (introspection).
    def api(request: httpx.Request) -> httpx.Response:
        token = request.headers["Authorization"].removeprefix("Bearer ")
        seen.append(token)
        active = token != old and introspect(p, token, "app", APP_SECRET)["active"]
        return httpx.Response(200 if active else 401)

    with httpx.Client(transport=httpx.MockTransport(api), auth=warden.auth(CONN)) as client:
        assert client.get("https://api.example.test/me").status_code == 200
    assert seen[0] == old and seen[1] != old and len(seen) == 2
    assert p.count("refresh_token") == 1
