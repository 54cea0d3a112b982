"""Smoke tests of the peer harness: real oidc-provider and django-oauth-toolkit, driven by httpx.

No credwarden code is involved: these prove that the servers the OAuth tests rely on start,
speak the flows, and behave the way the module docstrings of ``oidc.py`` and ``dot.py`` say
(notably: re-using a rotated refresh token revokes the whole grant).
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.peers.dot import DotProvider
from tests.peers.oidc import (
    DEVICE_CODE_GRANT,
    OidcProvider,
    confidential_client,
    drive_authorization,
    introspect,
    pkce_pair,
    public_client,
    require_node,
)

SECRET = "s3cret-for-tests"
REDIRECT = "http://127.0.0.1:8765/callback"
# A native (loopback) client may come back on any port: the CLI picks its own.
OTHER_PORT_REDIRECT = "http://127.0.0.1:50123/callback"


def _clients() -> list[dict[str, Any]]:
    return [
        confidential_client("app", SECRET, redirect_uris=[REDIRECT]),
        confidential_client(
            "post-app",
            SECRET,
            grant_types=["client_credentials"],
            auth_method="client_secret_post",
        ),
        public_client("cli", redirect_uris=[REDIRECT]),
    ]


@pytest.fixture(scope="module")
def op() -> Iterator[OidcProvider]:
    require_node()
    with OidcProvider(clients=_clients(), access_ttl=60) as provider:
        yield provider


@pytest.fixture
def http(op: OidcProvider) -> Iterator[httpx.Client]:
    with op.http_client() as client:
        yield client


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _login(
    op: OidcProvider,
    http: httpx.Client,
    *,
    client_id: str = "app",
    redirect_uri: str = REDIRECT,
    scope: str = "openid offline_access api:read",
    prompt: str | None = "consent",
) -> dict[str, Any]:
    """Auth code + PKCE through the real login and consent pages; returns the token response."""
    verifier, challenge = pkce_pair()
    url = op.authorization_url(
        client_id, redirect_uri, scope=scope, code_challenge=challenge, prompt=prompt
    )
    params = _query(op.drive_authorization(url))
    assert params["iss"] == op.issuer
    assert params["state"] == _query(url)["state"]
    data = {
        "grant_type": "authorization_code",
        "code": params["code"],
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    }
    if client_id == "cli":
        resp = http.post(op.token_url, data={**data, "client_id": "cli"})
    else:
        resp = http.post(op.token_url, data=data, auth=(client_id, SECRET))
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _refresh(op: OidcProvider, http: httpx.Client, refresh_token: str) -> httpx.Response:
    return http.post(
        op.token_url,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=("app", SECRET),
    )


# --------------------------------------------------------------------------- oidc-provider


def test_discovery(op: OidcProvider, http: httpx.Client) -> None:
    meta = http.get(op.discovery_url).json()
    assert meta["issuer"] == op.issuer
    assert meta["token_endpoint"] == op.token_url
    assert meta["authorization_endpoint"] == op.authorization_endpoint
    assert meta["revocation_endpoint"] == op.revocation_url
    assert meta["introspection_endpoint"] == op.introspection_url
    assert meta["device_authorization_endpoint"] == op.device_authorization_url
    assert meta["code_challenge_methods_supported"] == ["S256"]
    for grant in ("authorization_code", "refresh_token", "client_credentials", DEVICE_CODE_GRANT):
        assert grant in meta["grant_types_supported"]
    assert op.events[0]["event"] == "ready"


def test_auth_code_pkce_refresh_rotation_and_reuse_revokes_grant(
    op: OidcProvider, http: httpx.Client
) -> None:
    before = op.counts()
    tokens = _login(op, http, redirect_uri=OTHER_PORT_REDIRECT)
    assert tokens["access_token"] and tokens["refresh_token"]
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 60
    assert "." not in tokens["access_token"]  # opaque, not a JWT
    assert introspect(op, tokens["access_token"], "app", SECRET)["active"] is True

    rotated = _refresh(op, http, tokens["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()
    assert new["refresh_token"] != tokens["refresh_token"]
    assert new["access_token"] != tokens["access_token"]

    reuse = _refresh(op, http, tokens["refresh_token"])
    assert reuse.status_code == 400
    assert reuse.json()["error"] == "invalid_grant"
    # ... and the whole grant is gone: the rotated refresh token and its access token too.
    after = _refresh(op, http, new["refresh_token"])
    assert after.status_code == 400
    assert after.json()["error"] == "invalid_grant"
    assert introspect(op, new["access_token"], "app", SECRET) == {"active": False}

    op.wait_for_event("grant.revoked", client_id="app")
    detail = op.wait_for_event("grant.error", client_id="app")[-2]["error_detail"]
    assert detail == "refresh token already used"
    counts = op.counts()
    assert counts["refresh_token"] - before.get("refresh_token", 0) == 3
    assert counts["authorization_code"] - before.get("authorization_code", 0) == 1
    assert op.count("refresh_token") == counts["refresh_token"]


def test_concurrent_refreshes_one_wins_then_the_grant_is_revoked(
    op: OidcProvider, http: httpx.Client
) -> None:
    tokens = _login(op, http)
    op.control(token_delay_ms=150)
    results: list[httpx.Response] = []
    lock = threading.Lock()

    def refresh() -> None:
        with op.http_client() as own:
            resp = _refresh(op, own, tokens["refresh_token"])
        with lock:
            results.append(resp)

    threads = [threading.Thread(target=refresh) for _ in range(4)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=20)
    finally:
        op.control(token_delay_ms=0)
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200, 400, 400, 400]
    winner = next(r for r in results if r.status_code == 200).json()
    # The losers revoked the grant, so even the winner's new refresh token is dead.
    assert _refresh(op, http, winner["refresh_token"]).json()["error"] == "invalid_grant"


def test_no_refresh_token_without_prompt_consent(op: OidcProvider, http: httpx.Client) -> None:
    tokens = _login(op, http, prompt=None)
    assert "refresh_token" not in tokens
    assert "offline_access" not in tokens["scope"].split()


def test_public_client_with_pkce(op: OidcProvider, http: httpx.Client) -> None:
    tokens = _login(op, http, client_id="cli")
    assert tokens["refresh_token"]


def test_pkce_is_required(op: OidcProvider) -> None:
    url = op.authorization_url("app", REDIRECT)  # no code_challenge
    params = _query(drive_authorization(url))
    assert params["error"] == "invalid_request"
    assert "PKCE" in params["error_description"]


def test_user_denies(op: OidcProvider) -> None:
    _, challenge = pkce_pair()
    url = op.authorization_url("app", REDIRECT, code_challenge=challenge)
    for kwargs in ({"deny": True}, {"consent": False}):
        params = _query(drive_authorization(url, **kwargs))
        assert params["error"] == "access_denied"
        assert "code" not in params


def test_client_credentials_introspection_and_revocation(
    op: OidcProvider, http: httpx.Client
) -> None:
    resp = http.post(
        op.token_url,
        data={"grant_type": "client_credentials", "scope": "api:read no-such-scope"},
        auth=("app", SECRET),
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["scope"] == "api:read"  # unknown scopes are dropped silently
    assert "refresh_token" not in body
    info = introspect(op, body["access_token"], "app", SECRET)
    assert info["active"] is True
    assert info["client_id"] == "app"

    post = http.post(
        op.token_url,
        data={
            "grant_type": "client_credentials",
            "scope": "api:write",
            "client_id": "post-app",
            "client_secret": SECRET,
        },
    )
    assert post.status_code == 200, post.text

    revoked = http.post(
        op.revocation_url,
        data={"token": body["access_token"], "token_type_hint": "access_token"},
        auth=("app", SECRET),
    )
    assert revoked.status_code == 200
    assert introspect(op, body["access_token"], "app", SECRET) == {"active": False}

    bad = http.post(op.token_url, data={"grant_type": "client_credentials"}, auth=("app", "wrong"))
    assert bad.status_code == 401
    assert bad.json()["error"] == "invalid_client"


def test_revoking_a_refresh_token_revokes_its_grant(op: OidcProvider, http: httpx.Client) -> None:
    tokens = _login(op, http)
    resp = http.post(
        op.revocation_url, data={"token": tokens["refresh_token"]}, auth=("app", SECRET)
    )
    assert resp.status_code == 200
    assert _refresh(op, http, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert introspect(op, tokens["access_token"], "app", SECRET) == {"active": False}


def test_device_flow(op: OidcProvider, http: httpx.Client) -> None:
    def start() -> dict[str, Any]:
        resp = http.post(
            op.device_authorization_url,
            data={"client_id": "cli", "scope": "openid offline_access api:read"},
        )
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    def poll(device_code: str) -> httpx.Response:
        return http.post(
            op.token_url,
            data={"grant_type": DEVICE_CODE_GRANT, "device_code": device_code, "client_id": "cli"},
        )

    started = start()
    assert started["user_code"] and started["verification_uri"] == f"{op.issuer}/device"
    assert poll(started["device_code"]).json()["error"] == "authorization_pending"
    op.complete_device_authorization(started["verification_uri_complete"])
    done = poll(started["device_code"])
    assert done.status_code == 200, done.text
    assert done.json()["access_token"] and done.json()["refresh_token"]

    denied = start()
    op.complete_device_authorization(denied["verification_uri_complete"], deny=True)
    assert poll(denied["device_code"]).json()["error"] == "access_denied"


def test_control_fail_next_token(op: OidcProvider, http: httpx.Client) -> None:
    state = op.control(fail_next_token=2)
    assert state["fail_next_token"] == 2
    data = {"grant_type": "client_credentials", "scope": "api:read"}
    first = http.post(op.token_url, data=data, auth=("app", SECRET))
    second = http.post(op.token_url, data=data, auth=("app", SECRET))
    third = http.post(op.token_url, data=data, auth=("app", SECRET))
    assert [first.status_code, second.status_code, third.status_code] == [503, 503, 200]
    assert first.json()["error"] == "temporarily_unavailable"
    assert op.control()["fail_next_token"] == 0
    injected = op.wait_for_event("token", injected=True, count=2)
    assert {e["grant_type"] for e in injected} == {"client_credentials"}
    assert all(e["status"] == 503 for e in injected)


def test_refresh_token_without_rotation() -> None:
    require_node()
    with (
        OidcProvider(clients=_clients(), rotate_refresh_token=False) as op,
        op.http_client() as http,
    ):
        tokens = _login(op, http)
        for _ in range(2):
            resp = _refresh(op, http, tokens["refresh_token"])
            assert resp.status_code == 200, resp.text
            assert resp.json()["refresh_token"] == tokens["refresh_token"]


def test_issuer_with_a_path() -> None:
    require_node()
    with (
        OidcProvider(clients=_clients(), issuer_path="/tenant-guid/v2.0") as op,
        op.http_client() as http,
    ):
        assert op.issuer == f"{op.base_url}/tenant-guid/v2.0"
        meta = http.get(op.discovery_url).json()
        assert meta["issuer"] == op.issuer
        assert meta["token_endpoint"] == f"{op.issuer}/token"
        tokens = _login(op, http)  # interaction pages live under the path too
        assert _refresh(op, http, tokens["refresh_token"]).status_code == 200
        assert http.get(f"{op.base_url}/.well-known/openid-configuration").status_code == 404
        assert op.count("refresh_token") == 1  # the control endpoint is outside the path


def test_https_with_the_test_ca() -> None:
    require_node()
    with OidcProvider(clients=_clients(), tls=True, issuer_path="/tenant/v2.0") as op:
        assert op.issuer.startswith("https://127.0.0.1:")
        assert op.ca_path is not None
        with op.http_client() as http:
            assert http.get(op.discovery_url).json()["issuer"] == op.issuer
            resp = http.post(
                op.token_url,
                data={
                    "grant_type": "client_credentials",
                    "scope": "api:read",
                    "client_id": "post-app",
                    "client_secret": SECRET,
                },
            )
            assert resp.status_code == 200, resp.text
            tokens = _login(op, http)
            assert tokens["refresh_token"]
        with (
            httpx.Client(trust_env=False) as untrusting,
            pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
        ):
            untrusting.get(op.discovery_url)
        ctx = ssl.create_default_context(cafile=str(op.ca_path))
        with httpx.Client(verify=ctx, trust_env=False) as http:
            assert http.get(op.discovery_url).status_code == 200


def test_stop_reaps_the_server() -> None:
    require_node()
    op = OidcProvider(clients=_clients())
    op.start()
    assert op.running
    pid = op._server.pid
    op.stop()
    op.stop()  # idempotent
    assert not op.running
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        import os

        os.kill(pid, 0)


# --------------------------------------------------------------------------- django-oauth-toolkit


@pytest.fixture(scope="module")
def dot() -> Iterator[DotProvider]:
    with DotProvider(access_ttl=60) as provider:
        yield provider


def _dot_login(dot: DotProvider, http: httpx.Client) -> dict[str, Any]:
    verifier, challenge = pkce_pair()
    url = dot.authorization_url(OTHER_PORT_REDIRECT, code_challenge=challenge)
    params = _query(dot.drive_authorization(url))
    assert params["state"] == _query(url)["state"]
    resp = http.post(
        dot.token_url,
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": OTHER_PORT_REDIRECT,
            "code_verifier": verifier,
        },
        auth=(dot.auth_code_client_id, dot.auth_code_client_secret),
    )
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def _dot_refresh(dot: DotProvider, http: httpx.Client, refresh_token: str) -> httpx.Response:
    return http.post(
        dot.token_url,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(dot.auth_code_client_id, dot.auth_code_client_secret),
    )


def test_dot_auth_code_pkce_rotation_and_reuse(dot: DotProvider) -> None:
    with dot.http_client() as http:
        tokens = _dot_login(dot, http)
        assert tokens["access_token"] and tokens["refresh_token"]
        assert tokens["expires_in"] == 60
        rotated = _dot_refresh(dot, http, tokens["refresh_token"])
        assert rotated.status_code == 200, rotated.text
        new = rotated.json()
        assert new["refresh_token"] != tokens["refresh_token"]
        reuse = _dot_refresh(dot, http, tokens["refresh_token"])
        assert reuse.status_code == 400
        assert reuse.json()["error"] == "invalid_grant"
        # REFRESH_TOKEN_REUSE_PROTECTION: the whole token family is revoked.
        assert _dot_refresh(dot, http, new["refresh_token"]).json()["error"] == "invalid_grant"
        assert dot.introspect(new["access_token"]) == {"active": False}
    assert dot.count("refresh_token") >= 3


def test_dot_pkce_required_and_deny(dot: DotProvider) -> None:
    params = _query(dot.drive_authorization(dot.authorization_url(REDIRECT)))
    assert params["error"] == "invalid_request"
    _, challenge = pkce_pair()
    url = dot.authorization_url(REDIRECT, code_challenge=challenge)
    assert _query(dot.drive_authorization(url, deny=True))["error"] == "access_denied"


def test_dot_revocation(dot: DotProvider) -> None:
    with dot.http_client() as http:
        tokens = _dot_login(dot, http)
        resp = http.post(
            dot.revoke_url,
            data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
            auth=(dot.auth_code_client_id, dot.auth_code_client_secret),
        )
        assert resp.status_code == 200
        assert _dot_refresh(dot, http, tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_dot_client_credentials(dot: DotProvider) -> None:
    with dot.http_client() as http:
        resp = http.post(
            dot.token_url,
            data={"grant_type": "client_credentials", "scope": "api:read"},
            auth=(dot.cc_client_id, dot.cc_client_secret),
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["scope"] == "api:read"
        assert "refresh_token" not in body
        assert dot.introspect(body["access_token"])["active"] is True
        wrong = http.post(
            dot.token_url,
            data={"grant_type": "client_credentials"},
            auth=(dot.cc_client_id, "wrong"),
        )
        assert wrong.status_code == 401
        assert wrong.json()["error"] == "invalid_client"
    assert dot.count("client_credentials") >= 2
