"""Unknown paths are 404s in the one error shape: never a redirect, which would be built from
the request's Host header (an unauthenticated open redirect to wherever a caller names)."""

from __future__ import annotations

from starlette.testclient import TestClient

PATHS = ("/v1/credentials/", "/nope/", "/healthz/", "/v1/credentials/dev/a/b/value/", "/v1/")


def _no_redirects(c: TestClient) -> None:
    for path in PATHS:
        r = c.get(path, headers={"Host": "evil.example"}, follow_redirects=False)
        assert r.status_code == 404, (path, r.status_code, r.headers)
        assert "location" not in r.headers
        assert r.json()["code"] == "no_route"


def test_the_server_front_never_redirects(client: TestClient) -> None:
    _no_redirects(client)


def test_the_framework_app_never_redirects(framework_client: TestClient) -> None:
    _no_redirects(framework_client)
