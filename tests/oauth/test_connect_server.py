"""Connecting through the server: the redirect comes to `credwarden serve`'s public URL
(/oauth/callback) instead of a loopback listener.

A real oidc-provider and a real `credwarden serve` subprocess; the test plays the user's
browser (signs in and consents at the provider, then follows its redirect to the server).
The facade half (`connect_start` / `connect_finish` / `connect_status`) is also driven
directly, on both backends.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from credwarden import CredentialInvalid, Warden
from credwarden.errors import PermissionDenied, UsageError
from credwarden.oauth import connect as connect_mod
from credwarden.providers import provider_from_discovery, save_user_provider
from tests.cli.conftest import CREDWARDEN, clean_env
from tests.oauth.conftest import APP_SECRET, CLIENT, CONN, SCOPES, register
from tests.peers.oidc import OidcProvider, confidential_client, introspect, require_node
from tests.rawdb import stored_bytes

WEB = "dev/acme/web"
WEB_SECRET = "CANARY-web-secret-3b9e"
ADDR = "dev/acme/main"


class Served(NamedTuple):
    url: str
    warden: Warden
    """A local facade over the server's store (to look at what the server did)."""
    provider: OidcProvider
    admin: str
    viewer: str
    home: Path

    def api(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.admin}"}
        return httpx.Client(base_url=self.url, headers=headers, trust_env=False, timeout=30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    with httpx.Client(trust_env=False, timeout=2) as http:
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if http.get(url + "/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.05)


@pytest.fixture
def served(home: Path, tmp_path: Path) -> Iterator[Served]:
    require_node()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    web = confidential_client(
        "web",
        WEB_SECRET,
        redirect_uris=[f"{url}/oauth/callback"],
        grant_types=("authorization_code", "refresh_token"),
    )
    p = OidcProvider([web], access_ttl=600).start()
    w, _ = Warden.init(source="sdk")  # CREDWARDEN_HOME is this test's home
    proc = None
    try:
        with httpx.Client(trust_env=False) as http:
            doc = http.get(p.discovery_url).json()
        save_user_provider(w.settings.home, "acme", provider_from_discovery("acme", doc))
        w.add(WEB, "oauth2_client", {"client_id": "web", "client_secret": WEB_SECRET})
        w.add_principal("admin", type="user", role="admin")
        w.add_principal("viewer", type="user", role="viewer", pattern="dev/acme/*")
        _, admin = w.issue_token("admin")
        _, viewer = w.issue_token("viewer")
        log = tmp_path / "serve.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [
                    str(CREDWARDEN),
                    "serve",
                    "--port",
                    str(port),
                    "--no-scheduler",
                    "--public-url",
                    url + "/",
                ],
                env=clean_env(home),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        _wait_healthy(url, proc, log)
        assert f"OAuth redirect URI {url}/oauth/callback" in log.read_text()
        yield Served(url, w, p, admin.reveal(), viewer.reveal(), home)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        p.stop()
        w.close()


def _start(s: Served, address: str = ADDR, token: str | None = None) -> httpx.Response:
    env, service, name = address.split("/")
    with s.api(token) as api:
        return api.post(
            f"/v1/credentials/{env}/{service}/{name}/connect",
            json={"provider": "acme", "client": WEB, "scopes": SCOPES},
        )


def _status(s: Served, flow: str, token: str | None = None) -> dict[str, Any]:
    with s.api(token) as api:
        resp = api.get(f"/v1/connect/{flow}")
    assert resp.status_code == 200, resp.text
    out: dict[str, Any] = resp.json()
    return out


def _callback(url: str) -> httpx.Response:
    """What the browser does with the provider's redirect: no API token."""
    with httpx.Client(trust_env=False, timeout=30) as http:
        return http.get(url)


def _stored_oauth2(w: Warden) -> list[str]:
    return [i.address for i in w.list(kind="oauth2")]


def _pending(w: Warden) -> list[str]:
    with w.records.store.transaction(write=False) as tx:
        return [r.key for r in tx.list(connect_mod.NS_PENDING)]


# -- through the server --------------------------------------------------------------------------


def test_connect_through_the_server_stores_a_working_connection(served: Served) -> None:
    s, w, p = served, served.warden, served.provider
    resp = _start(s)
    assert resp.status_code == 201, resp.text
    start = resp.json()
    assert set(start) == {"authorize_url", "flow", "expires_at", "redirect_uri"}
    assert start["redirect_uri"] == f"{s.url}/oauth/callback"
    query = {k: v[0] for k, v in parse_qs(urlsplit(start["authorize_url"]).query).items()}
    assert query["redirect_uri"] == start["redirect_uri"]
    assert query["code_challenge_method"] == "S256" and query["prompt"] == "consent"
    state = query["state"]
    assert start["flow"] == connect_mod.flow_key(state) and len(start["flow"]) == 64
    assert _status(s, start["flow"]) == {
        "status": "pending",
        "address": ADDR,
        "expires_at": start["expires_at"],
    }

    # The pending record: the verifier (the one the challenge was made from) only sealed,
    # the state not at all.
    with w.records.store.transaction(write=False) as tx:
        rec = tx.get(connect_mod.NS_PENDING, start["flow"])
        assert rec is not None
        body = json.loads(rec.body)
        flow = json.loads(
            w.records.barrier.open_blob(tx, body["sealed"], f"oauth_pending|{start['flow']}")
        )
    assert body["principal"] == "admin" and body["address"] == ADDR and "verifier" not in body
    verifier = flow["verifier"]
    assert create_s256_code_challenge(verifier) == query["code_challenge"]
    raw = stored_bytes(w.settings.database_url)
    assert verifier.encode() not in raw and state.encode() not in raw
    assert b"sealed" in raw  # the record is there, in the file grepped

    redirect = p.drive_authorization(start["authorize_url"])
    assert redirect.startswith(f"{s.url}/oauth/callback?")
    code = parse_qs(urlsplit(redirect).query)["code"][0]
    page = _callback(redirect)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert f"Connected {ADDR}. You can close this window." in page.text
    assert code not in page.text and state not in page.text
    assert _status(s, start["flow"]) == {"status": "done", "address": ADDR}

    info = w.describe(ADDR)
    assert info.kind == "oauth2" and info.provider == "acme" and info.version == 1
    assert w.history(ADDR)[0].created_by == "admin"  # finished as the one who started it
    with s.api() as api:
        tok = api.get(f"/v1/credentials/{ADDR}/token")
    assert tok.status_code == 200, tok.text
    access = tok.json()["access_token"]
    assert introspect(p, access, "web", WEB_SECRET)["active"] is True
    assert p.count("authorization_code") == 1
    assert _pending(w) == []
    raw = stored_bytes(w.settings.database_url)
    assert verifier.encode() not in raw and access.encode() not in raw

    events = [e for e in w.audit_events(address=ADDR)]
    started = [e for e in events if e.action == "connect.start"]
    finished = [e for e in events if e.action == "connect.finish"]
    assert [(e.principal, e.result) for e in started] == [("admin", "ok")]
    assert [(e.principal, e.result, e.source) for e in finished] == [("admin", "ok", "api")]
    assert verifier not in str([e.to_dict() for e in w.audit_events()])

    # Replayed callback (the same state and code): refused, nothing stored or exchanged.
    again = _callback(redirect)
    assert again.status_code == 400
    assert "already used" in again.text and code not in again.text
    assert p.count("authorization_code") == 1
    assert w.describe(ADDR).version == 1


def test_wrong_state_is_a_400_page_and_consumes_nothing(served: Served) -> None:
    s, w, p = served, served.warden, served.provider
    start = _start(s).json()
    page = _callback(f"{s.url}/oauth/callback?code=stolen-code-77&state=not-ours")
    assert page.status_code == 400
    assert page.headers["content-type"].startswith("text/html")
    assert "does not belong to a pending connect" in page.text
    assert "stolen-code-77" not in page.text and "not-ours" not in page.text
    no_state = _callback(f"{s.url}/oauth/callback?code=stolen-code-77")
    assert no_state.status_code == 400 and "no state" in no_state.text
    assert p.count("authorization_code") == 0
    assert _stored_oauth2(w) == []
    assert _status(s, start["flow"])["status"] == "pending"  # the real flow is unharmed


def test_denied_authorization_is_an_error_page_and_stores_nothing(served: Served) -> None:
    s, w, p = served, served.warden, served.provider
    start = _start(s).json()
    redirect = p.drive_authorization(start["authorize_url"], deny=True)
    assert "error=access_denied" in redirect
    page = _callback(redirect)
    assert page.status_code == 400
    assert "the provider did not authorize: access_denied" in page.text
    assert _stored_oauth2(w) == []
    assert p.count("authorization_code") == 0
    status = _status(s, start["flow"])
    assert status["status"] == "failed" and "access_denied" in status["message"]
    finished = [e for e in w.audit_events(address=ADDR) if e.action == "connect.finish"]
    assert [(e.result, e.detail.get("error")) for e in finished] == [("denied", "access_denied")]


def test_error_pages_escape_and_never_echo_the_code(served: Served) -> None:
    s, w, p = served, served.warden, served.provider
    # An unknown error value (markup) is neither rendered nor echoed.
    start = _start(s).json()
    state = parse_qs(urlsplit(start["authorize_url"]).query)["state"][0]
    evil = "<script>alert(1)</script>"
    page = _callback(f"{s.url}/oauth/callback?" + urlencode({"state": state, "error": evil}))
    assert page.status_code == 400
    assert "<script>" not in page.text and "alert(1)" not in page.text
    assert "the provider did not authorize: error" in page.text
    # A code the provider refuses: the exchange fails, nothing is stored, the code is not shown.
    start = _start(s).json()
    state = parse_qs(urlsplit(start["authorize_url"]).query)["state"][0]
    bogus = "bogus-code-0d6f1e"
    page = _callback(f"{s.url}/oauth/callback?" + urlencode({"state": state, "code": bogus}))
    assert page.status_code == 400 and "Not connected" in page.text
    assert bogus not in page.text and state not in page.text
    assert p.count("authorization_code") == 1
    assert _stored_oauth2(w) == []
    assert _status(s, start["flow"])["status"] == "failed"


def test_start_without_write_is_403_and_audited(served: Served) -> None:
    s, w = served, served.warden
    resp = _start(s, token=s.viewer)
    assert resp.status_code == 403, resp.text
    body = resp.json()
    assert body["code"] == "permission_denied" and "viewer may not write" in body["message"]
    denied = [e for e in w.audit_events(address=ADDR) if e.result == "denied"]
    assert [(e.principal, e.action) for e in denied] == [("viewer", "connect.start")]
    assert _pending(w) == []
    # Another principal's flow is "unknown" to a caller who may not describe its address.
    w.add_principal("other", type="user", role="admin", pattern="prod/*/*")
    _, other = w.issue_token("other")
    flow = _start(s).json()["flow"]
    assert _status(s, flow, token=s.viewer)["status"] == "pending"  # may describe dev/acme/*
    assert _status(s, flow, token=other.reveal()) == {"status": "unknown"}


def test_remote_cli_connect_through_the_server(served: Served, tmp_path: Path) -> None:
    s, w, p = served, served.warden, served.provider
    empty = tmp_path / "empty"
    empty.mkdir()
    env = clean_env(empty, {"CREDWARDEN_URL": s.url, "CREDWARDEN_TOKEN": s.admin})
    proc = subprocess.Popen(
        [
            str(CREDWARDEN),
            "connect",
            "dev/acme/cli",
            "--provider",
            "acme",
            "--client",
            WEB,
            "--scope",
            " ".join(SCOPES),
            "--no-browser",
            "--timeout",
            "60",
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith(p.issuer), url
        page = _callback(p.drive_authorization(url))
        assert page.status_code == 200 and "Connected dev/acme/cli" in page.text
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "connected dev/acme/cli (provider acme" in out
    assert f"{s.url}/oauth/callback" in err  # where the redirect goes
    token = w.access_token("dev/acme/cli").reveal()
    assert introspect(p, token, "web", WEB_SECRET)["active"] is True


def test_remote_connect_refuses_other_grants_and_denials(served: Served, tmp_path: Path) -> None:
    from credwarden.remote import RemoteWarden

    with RemoteWarden(served.url, served.viewer) as r:
        with pytest.raises(UsageError, match="runs locally"):
            r.connect(ADDR, provider="acme", client=WEB, grant="device_code")
        with pytest.raises(PermissionDenied, match="may not write"):
            r.connect(ADDR, provider="acme", client=WEB, open_url=lambda url: None)


def test_a_server_without_public_url_refuses_to_start_a_connect(warden: Warden) -> None:
    from starlette.testclient import TestClient

    from credwarden.api.app import create_app

    warden.add_principal("admin", type="user", role="admin")
    _, tok = warden.issue_token("admin")
    with TestClient(create_app(warden)) as client:
        resp = client.post(
            f"/v1/credentials/{ADDR}/connect",
            json={"provider": "acme", "client": WEB},
            headers={"Authorization": f"Bearer {tok.reveal()}"},
        )
    assert resp.status_code == 400 and "no public URL" in resp.json()["message"]


# -- the facade, on both backends ----------------------------------------------------------------


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_facade_start_finish_status(warden: Warden, provider_factory: Callable[..., Any]) -> None:
    p = provider_factory()
    register(warden, p)
    # The conftest's client is a native app: any port of http://127.0.0.1/callback matches.
    start = warden.connect_start(
        CONN,
        provider="acme",
        client=CLIENT,
        scopes=SCOPES,
        redirect_uri="http://127.0.0.1:9/callback",
    )
    assert warden.connect_status(start["flow"])["status"] == "pending"
    redirect = p.drive_authorization(start["authorize_url"])
    query = _query(redirect)
    info = warden.connect_finish(query["state"], query)
    assert info.address == CONN and info.kind == "oauth2"
    assert introspect(p, warden.access_token(CONN).reveal(), "app", APP_SECRET)["active"]
    assert warden.connect_status(start["flow"]) == {"status": "done", "address": CONN}
    with pytest.raises(UsageError, match="already used"):
        warden.connect_finish(query["state"], query)
    assert warden.connect_status("0" * 64) == {"status": "unknown"}
    assert warden.connect_status("not-a-flow") == {"status": "unknown"}


def test_facade_expired_flow_stores_nothing(
    warden: Warden, provider_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    p = provider_factory()
    register(warden, p)
    start = warden.connect_start(
        CONN,
        provider="acme",
        client=CLIENT,
        scopes=SCOPES,
        redirect_uri="https://cw.example.com/oauth/callback",
    )
    state = _query(start["authorize_url"])["state"]
    real = connect_mod.utcnow
    monkeypatch.setattr(connect_mod, "utcnow", lambda: real() + timedelta(minutes=11))
    assert warden.connect_status(start["flow"])["status"] == "expired"
    with pytest.raises(CredentialInvalid, match="expired"):
        warden.connect_finish(state, {"state": state, "code": "late"})
    assert warden.connect_status(start["flow"])["status"] == "expired"
    assert [i.address for i in warden.list(kind="oauth2")] == []
    assert p.count("authorization_code") == 0
    with pytest.raises(UsageError, match="already used"):
        warden.connect_finish(state, {"state": state, "code": "late"})


def test_facade_checks_inputs_before_anything_is_kept(
    warden: Warden, provider_factory: Callable[..., Any]
) -> None:
    from credwarden.errors import ValidationError

    p = provider_factory()
    register(warden, p)
    for uri in ("ftp://x/cb", "https://u:pw@x/cb", "https://x/cb#frag", "/relative"):
        with pytest.raises(ValidationError, match="redirect URI"):
            warden.connect_start(
                CONN, provider="acme", client=CLIENT, scopes=SCOPES, redirect_uri=uri
            )
    with pytest.raises(ValidationError, match="no template var"):
        warden.connect_start(
            CONN,
            provider="acme",
            client=CLIENT,
            redirect_uri="https://x/cb",
            template_vars={"shop": "a"},
        )
    assert _pending(warden) == []
