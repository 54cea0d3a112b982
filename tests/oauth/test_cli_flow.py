"""The user's OAuth journey through the installed command, against the real provider:
providers add --discovery, add the client, connect --no-browser, token, headers, test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from credwarden import Warden
from tests.oauth.conftest import APP_SECRET
from tests.peers.oidc import introspect

CLI = str(Path(sys.executable).parent / "credwarden")


def _env(home: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDWARDEN_")}
    env["CREDWARDEN_HOME"] = home
    return env


def test_connect_no_browser_then_token(tmp_path: Path, provider_factory) -> None:  # type: ignore[no-untyped-def]
    p = provider_factory()
    env = _env(str(tmp_path / "home"))

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CLI, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60
        )

    assert run("init").returncode == 0
    assert run("providers", "add", "acme", "--discovery", p.discovery_url).returncode == 0
    added = run(
        "add",
        "dev/acme/app",
        "--kind",
        "oauth2_client",
        "--field",
        "client_id=app",
        "--stdin",
        stdin=APP_SECRET,
    )
    assert added.returncode == 0, added.stderr
    connect = subprocess.Popen(
        [
            CLI,
            "connect",
            "dev/acme/main",
            "--provider",
            "acme",
            "--client",
            "dev/acme/app",
            "--scope",
            "openid",
            "--scope",
            "offline_access",
            "--no-browser",
            "--port",
            "0",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert connect.stdout is not None
    url = connect.stdout.readline().strip()
    assert url.startswith(p.authorization_endpoint) and " " not in url
    redirect = p.drive_authorization(url)
    with httpx.Client(trust_env=False) as http:
        assert http.get(redirect).status_code == 200
    out, err = connect.communicate(timeout=60)
    assert connect.returncode == 0, err
    assert "connected dev/acme/main" in out

    token = run("token", "dev/acme/main")
    assert token.returncode == 0, token.stderr
    value = token.stdout.strip()
    assert token.stdout == value + "\n"
    assert introspect(p, value, "app", APP_SECRET)["active"] is True
    headers = run("headers", "dev/acme/main")
    assert headers.stdout.strip() == f"Authorization: Bearer {value}"
    assert run("test", "dev/acme/main").returncode == 0
    assert APP_SECRET not in out + err + token.stderr


def test_scheduler_hook_refreshes_what_is_due(warden: Warden, provider_factory) -> None:  # type: ignore[no-untyped-def]
    from tests.oauth.conftest import CONN, connect, register

    p = provider_factory(access_ttl=120)
    register(warden, p)
    connect(warden, p)
    assert warden.refresh_due(within=10) == [{"address": CONN, "ok": True}]
    assert p.count("refresh_token") == 0  # not due yet
    assert warden.refresh_due(within=300) == [{"address": CONN, "ok": True}]
    assert p.count("refresh_token") == 1
