"""`rm` of an OAuth connection revokes its grant at the provider: the catalog entry's own
revocation request when it has one (GitHub's DELETE /applications/{client_id}/token, Slack's
auth.revoke, ...), sent to a local server standing in for the provider; the removal's one
audit event records the outcome, and a failed revocation still removes, with a warning."""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from credwarden.providers import save_user_provider

from .conftest import CLI
from .test_oauth_cli import CLIENT_SECRET, ISSUED, add_client, add_connection
from .test_providers_cli import LocalServer, serving


class Provider:
    """Records every request; answers the revocation with `status`."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []
        self.status = 204

    def __call__(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        self.seen.append((method, path, headers, body))
        return self.status, {}, b""


@pytest.fixture
def revoker(store: CLI) -> Iterator[tuple[Provider, LocalServer]]:
    fake = Provider()
    with serving(fake) as server:
        save_user_provider(
            store.home,
            "revoker",
            {
                "name": "Revoker",
                "auth": ["oauth2"],
                "docs": f"{server.base}/docs",
                "oauth2": {
                    "authorization_url": f"{server.base}/authorize",
                    "token_url": f"{server.base}/token",
                    "scopes_default": ["read"],
                },
                "revoke": {
                    "for": ["oauth2"],
                    "url": f"{server.base}/applications/{{client_id}}/token",
                    "method": "DELETE",
                    "headers": {"Authorization": "Basic {client_basic}"},
                    "body": '{"access_token": "{access_token}"}',
                    "expect_status": 204,
                },
            },
        )
        add_client(store)
        add_connection(store, "dev/local/conn", "revoker")
        yield fake, server


def _last_event(home: Path) -> dict[str, object]:
    with sqlite3.connect(home / "credwarden.db") as c:
        (body,) = c.execute(
            "SELECT body FROM audit_events WHERE seq < ? ORDER BY seq DESC LIMIT 1", (1 << 62,)
        ).fetchone()
    event: dict[str, object] = json.loads(body)
    return event


def test_rm_sends_the_providers_own_revocation_request(
    store: CLI, revoker: tuple[Provider, LocalServer]
) -> None:
    fake, _ = revoker
    r = store("rm", "dev/local/conn", "--yes")
    assert r.code == 0, r.err
    assert r.out == "removed dev/local/conn (its grant was revoked at the provider)\n"
    method, path, headers, body = fake.seen[-1]
    assert (method, path) == ("DELETE", "/applications/app/token")
    basic = base64.b64encode(f"app:{CLIENT_SECRET}".encode()).decode()
    assert headers["authorization"] == f"Basic {basic}"
    assert json.loads(body) == {"access_token": ISSUED}
    event = _last_event(store.home)
    assert (event["action"], event["result"]) == ("delete", "ok")
    assert event["detail"] == {"kind": "oauth2", "revocation": "revoked"}
    assert store("show", "dev/local/conn").code == 4


def test_a_failed_revocation_still_removes_and_says_so(
    store: CLI, revoker: tuple[Provider, LocalServer]
) -> None:
    fake, _ = revoker
    fake.status = 500
    r = store("rm", "dev/local/conn", "--yes")
    assert r.code == 0, r.err
    assert r.out == "removed dev/local/conn\n"
    assert "revoking its grant at the provider failed (revocation_http_500)" in r.err
    assert CLIENT_SECRET not in r.err and ISSUED not in r.err
    assert _last_event(store.home)["detail"] == {
        "kind": "oauth2",
        "revocation": "revocation_http_500",
    }
