"""Every /v1 route against authentication and least privilege, over HTTP, on both backends.

One table row per route (method, path template, sample parameters, body, the grant action it
needs, a principal inside the grant and one outside it). The table must cover every route the
app declares, so a new route without a row fails `test_table_covers_every_route`.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, NamedTuple

import pytest
from starlette.testclient import TestClient

from credwarden.api.app import create_app
from tests.api.conftest import PRINCIPALS, SECRETS, USER_AGENT, Api
from tests.conftest import CANARY

ERROR_KEYS = {"code", "message", "hint", "exit_code"}
CRED = {"env": "prod", "service": "stripe", "name": "billing"}
OAUTH = {"env": "prod", "service": "stripe", "name": "oauth"}


class Row(NamedTuple):
    method: str
    path: str
    """The template exactly as declared in app.py."""
    params: dict[str, str]
    """Sample path parameters; `@NAME` stands for NAME's API token id."""
    action: str | None
    """The grant action the route needs; None: any authenticated principal (results filtered)."""
    granted: str
    """A principal inside the grant: gets `status`."""
    denied: str | None
    """A principal outside the grant: gets 403 (None for open routes)."""
    op: str | None
    """The audit action of the denial event (the facade's operation name)."""
    body: dict[str, Any] | None = None
    query: dict[str, Any] | None = None
    status: int = 200
    address: str | None = None
    """The address named by the denial event (default: the path's credential, if any)."""

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"

    def url(self, api: Api) -> str:
        values = {
            k: api.token_ids[v[1:]] if v.startswith("@") else v for k, v in self.params.items()
        }
        return self.path.format(**values)

    def denied_address(self) -> str | None:
        if self.address is not None:
            return self.address
        if "{env}" in self.path and "{service}" in self.path:
            return "{env}/{service}/{name}".format(**self.params)
        return None


C = "/v1/credentials/{env}/{service}/{name}"

ROUTES: list[Row] = [
    # -- credentials: prod/stripe/billing (api_key, 2 versions), prod/stripe/oauth (oauth2)
    Row("GET", "/v1/credentials", {}, None, "runner-p", None, None),
    Row(
        "POST",
        "/v1/credentials",
        {},
        "write",
        "editor-p",
        "viewer-p",
        "write",
        body={"address": "dev/stripe/new", "kind": "api_key", "fields": {"api_key": "k"}},
        status=201,
        address="dev/stripe/new",
    ),
    Row("GET", C, CRED, "describe", "runner-p", "nobody", "describe"),
    Row("PATCH", C, CRED, "write", "editor-p", "runner-p", "write", body={"description": "d"}),
    Row("DELETE", C, CRED, "write", "editor-p", "runner-p", "delete"),
    Row("GET", C + "/value", CRED, "read", "runner-p", "viewer-p", "read"),
    Row("GET", C + "/token", OAUTH, "use", "runner-p", "viewer-p", "use"),
    Row("POST", C + "/token", OAUTH, "use", "runner-p", "viewer-p", "use", body={}),
    Row("GET", C + "/headers", CRED, "read", "runner-p", "viewer-p", "read"),
    Row(
        "POST",
        C + "/connect",
        {"env": "prod", "service": "stripe", "name": "conn"},
        "write",
        "editor-p",
        "runner-p",
        "connect.start",
        body={"provider": "github", "client": "prod/stripe/app"},
        status=201,
    ),
    # Open: a flow's status is "unknown" to whoever neither started it nor may describe it.
    Row("GET", "/v1/connect/{flow}", {"flow": "0" * 64}, None, "runner-p", None, None),
    Row("GET", C + "/versions", CRED, "describe", "runner-p", "nobody", "history"),
    Row("POST", C + "/rollback", CRED, "write", "editor-p", "runner-p", "write", {"to_version": 1}),
    # The live test is authorized (`use`) before anything is looked at. (Seeded credentials
    # name no provider: the granted call answers "nothing to test", offline.)
    Row("POST", C + "/test", CRED, "use", "runner-p", "viewer-p", "test", body={}),
    Row(
        "POST",
        "/v1/import",
        {},
        "write",
        "editor-p",
        "viewer-p",
        "write",
        body={"entries": [["NEW_VAR", "v"]], "env": "dev", "service": "app"},
        address="dev/app/new-var",
    ),
    Row("GET", "/v1/env-vars", {}, None, "editor-p", None, None, query={"env": "dev"}),
    # -- environments
    Row("GET", "/v1/environments", {}, None, "viewer-p", None, None),
    Row(
        "POST",
        "/v1/environments",
        {},
        "admin",
        "admin",
        "editor-p",
        "admin",
        body={"name": "qa"},
        status=201,
    ),
    Row(
        "PUT",
        "/v1/environments/{env}/protection",
        {"env": "staging"},
        "admin",
        "admin",
        "editor-p",
        "environment.protect",
        body={"protected": True},
    ),
    # -- principals, tokens, grants
    Row("GET", "/v1/whoami", {}, None, "nobody", None, None),
    Row("GET", "/v1/principals", {}, "admin", "admin", "editor-p", "principal.list"),
    Row(
        "POST",
        "/v1/principals",
        {},
        "admin",
        "admin",
        "editor-p",
        "principal.add",
        body={"name": "new-p", "role": "runner", "pattern": "dev/*"},
        status=201,
    ),
    Row(
        "GET",
        "/v1/principals/{name}",
        {"name": "runner-p"},
        "admin",
        "admin",
        "editor-p",
        "principal.show",
    ),
    Row(
        "DELETE",
        "/v1/principals/{name}",
        {"name": "nobody"},
        "admin",
        "admin",
        "editor-p",
        "principal.remove",
    ),
    Row(
        "POST",
        "/v1/principals/{name}/tokens",
        {"name": "runner-p"},
        "admin",
        "admin",
        "editor-p",
        "token.issue",
        body={"expires_in": 3600},
        status=201,
    ),
    Row("GET", "/v1/tokens", {}, "admin", "admin", "editor-p", "token.list"),
    Row(
        "DELETE",
        "/v1/tokens/{token_id}",
        {"token_id": "@nobody"},
        "admin",
        "admin",
        "editor-p",
        "token.revoke",
    ),
    Row("GET", "/v1/grants", {}, "admin", "admin", "editor-p", "grant.list"),
    Row(
        "POST",
        "/v1/grants",
        {},
        "admin",
        "admin",
        "editor-p",
        "grant.add",
        body={"principal": "nobody", "pattern": "dev/*", "actions": ["describe"]},
        status=201,
    ),
    Row(
        "POST",
        "/v1/grants/revoke",
        {},
        "admin",
        "admin",
        "editor-p",
        "grant.revoke",
        body={"principal": "runner-p", "pattern": "prod/stripe/*"},
    ),
    # -- reports: filtered to what the caller may describe; the review needs admin
    Row("GET", "/v1/reports/expiring", {}, None, "runner-p", None, None),
    Row("GET", "/v1/reports/rotation", {}, None, "runner-p", None, None),
    Row("GET", "/v1/reports/unused", {}, None, "runner-p", None, None, query={"days": 30}),
    Row("GET", "/v1/reports/permissions", {}, "admin", "admin", "editor-p", "review"),
    # -- audit and keys
    Row("GET", "/v1/audit", {}, "admin", "admin", "editor-p", "audit.read", query={"limit": 5}),
    Row("POST", "/v1/audit/verify", {}, "admin", "admin", "editor-p", "audit.verify"),
    Row("POST", "/v1/keys/rotate", {}, "admin", "admin", "editor-p", "key.rotate"),
]

GUARDED = [r for r in ROUTES if r.denied is not None]
OPEN = [r for r in ROUTES if r.denied is None]
# Routes whose successful answer is a secret (or env vars of secrets): excluded from leak checks.
READS = {
    ("GET", C + "/value"),
    ("GET", C + "/token"),
    ("POST", C + "/token"),
    ("GET", C + "/headers"),
    ("GET", "/v1/env-vars"),
}


def rows(table: list[Row]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("row", table, ids=[r.id for r in table])


def call(client: TestClient, api: Api, row: Row, principal: str | None) -> Any:
    headers = api.auth(principal) if principal else {}
    return client.request(
        row.method, row.url(api), headers=headers, json=row.body, params=row.query
    )


def assert_error(resp: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == ERROR_KEYS, body
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["exit_code"], int)
    if code is not None:
        assert body["code"] == code, body
    return dict(body)


# The only routes outside /v1, none needing a token (the OAuth redirect's state is its
# capability). A new one must be added here on purpose.
UNAUTHENTICATED = {"/healthz", "/metrics", "/openapi.json", "/oauth/callback"}


def declared_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every route the app declares (routers included)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before routers were included lazily: routes are flat
        routes: list[Any] = list(app.routes)
    else:
        routes = list(iter_route_contexts(app.routes))
    found = set()
    for r in routes:
        path, methods = getattr(r, "path", None), getattr(r, "methods", None)
        if path and methods:
            found |= {(m, path) for m in methods if m != "HEAD"}
    return found


# -- the table against the app -----------------------------------------------------------


def test_table_covers_every_route(api: Api) -> None:
    everything = declared_routes(create_app(api.warden))
    declared = {(m, p) for m, p in everything if p.startswith("/v1/")}
    assert {p for _m, p in everything - declared} <= UNAUTHENTICATED
    table = {(r.method, r.path) for r in ROUTES}
    assert len(table) == len(ROUTES), "a route has two rows"
    assert declared - table == set(), "routes without a row in ROUTES"
    assert table - declared == set(), "rows for routes the app does not have"


# -- per route: no token, outside the grant, inside the grant -----------------------------


@rows(ROUTES)
def test_no_bearer_token_is_401(row: Row, api: Api, client: TestClient) -> None:
    before = len(api.events())
    resp = call(client, api, row, None)
    body = assert_error(resp, 401, "unauthenticated")
    assert resp.headers["www-authenticate"] == "Bearer"
    assert "token" in body["message"]
    # A valid token under another scheme is no bearer token either.
    auth = {"Authorization": f"Basic {api.tokens['admin']}"}
    resp = client.request(row.method, row.url(api), headers=auth, json=row.body, params=row.query)
    assert_error(resp, 401, "unauthenticated")
    assert resp.headers["www-authenticate"] == "Bearer"
    # Each attempt without a token is audited too (and counts towards the source's brake).
    new = api.events()[before:]
    assert [(e["action"], e["result"], e["detail"]["reason"]) for e in new] == [
        ("authenticate", "denied", "missing")
    ] * 2
    assert all(e["principal"] == "anonymous" and e["client"]["ip"] for e in new)


@rows(GUARDED)
def test_outside_grant_is_403_and_audited(row: Row, api: Api, client: TestClient) -> None:
    assert row.denied is not None
    before = api.events()
    resp = call(client, api, row, row.denied)
    body = assert_error(resp, 403, "permission_denied")
    assert row.denied in body["message"]
    new = api.events()[len(before) :]
    denials = [e for e in new if e["result"] == "denied"]
    assert len(denials) == 1, new
    event = denials[0]
    assert event["principal"] == row.denied
    assert event["action"] == row.op
    assert event["address"] == row.denied_address()
    assert event["source"] == "api"
    assert event["client"]["ip"] == "testclient"
    assert event["client"]["user_agent"] == USER_AGENT
    assert event["client"]["token"] == api.token_ids[row.denied]
    # Refused means nothing happened: no successful event of that principal.
    assert not [e for e in new if e["principal"] == row.denied and e["result"] == "ok"]


@rows(OPEN)
def test_open_route_answers_within_the_grants(row: Row, api: Api, client: TestClient) -> None:
    resp = call(client, api, row, "nobody")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    if row.path == "/v1/credentials" or row.path.startswith("/v1/reports/"):
        assert body == []  # nobody may describe anything: an empty list, not a refusal
    elif row.path == "/v1/env-vars":
        assert body == {}
    elif row.path == "/v1/connect/{flow}":
        assert body == {"status": "unknown"}
    elif row.path == "/v1/whoami":
        assert body == {"name": "nobody", "type": "workflow", "token": api.token_ids["nobody"]}
    else:
        assert body["protected"] == ["prod"]


@rows(ROUTES)
def test_inside_grant_succeeds(row: Row, api: Api, client: TestClient) -> None:
    resp = call(client, api, row, row.granted)
    assert resp.status_code == row.status, resp.text
    assert 200 <= resp.status_code < 300
    assert resp.headers["content-type"].startswith("application/json")
    resp.json()
    if row.action is not None and row.path.startswith(C):
        mine = api.events(principal=row.granted)
        assert mine and mine[-1]["result"] == "ok" and mine[-1]["source"] == "api"


def test_listing_is_filtered_by_grants(api: Api, client: TestClient) -> None:
    def listed(principal: str) -> set[str]:
        resp = client.get("/v1/credentials", headers=api.auth(principal))
        assert resp.status_code == 200, resp.text
        return {c["address"] for c in resp.json()}

    everything = {a for a in SECRETS if "@" not in a and "#" not in a}
    assert listed("admin") == everything
    assert listed("runner-p") == {a for a in everything if a.startswith("prod/stripe/")}
    assert listed("viewer-p") == {"dev/stripe/billing", "dev/app/db-password"}
    assert listed("nobody") == set()


# -- tokens: expiry, revocation, removal, garbage, brute force ---------------------------

WHOAMI = "/v1/whoami"
VALUE = "/v1/credentials/prod/stripe/billing/value"


def denied_auth_events(api: Api) -> list[dict[str, Any]]:
    return [e for e in api.events() if e["action"] == "authenticate"]


@pytest.mark.parametrize("path", [WHOAMI, VALUE])
def test_expired_token_is_401(path: str, api: Api, client: TestClient) -> None:
    _, token = api.warden.issue_token("runner-p", expires_in=1)
    headers = {"Authorization": f"Bearer {token.reveal()}"}
    assert client.get(path, headers=headers).status_code == 200
    time.sleep(1.2)
    resp = client.get(path, headers=headers)
    body = assert_error(resp, 401, "unauthenticated")
    assert "expired" in body["message"]
    assert resp.headers["www-authenticate"] == "Bearer"
    event = denied_auth_events(api)[-1]
    assert event["result"] == "denied"
    assert event["principal"] == "runner-p"
    assert event["detail"]["reason"] == "expired"


@pytest.mark.parametrize("path", [WHOAMI, VALUE])
def test_revoked_token_is_401(path: str, api: Api, client: TestClient) -> None:
    headers = api.auth("runner-p")
    assert client.get(path, headers=headers).status_code == 200
    api.warden.revoke_token(api.token_ids["runner-p"])
    body = assert_error(client.get(path, headers=headers), 401, "unauthenticated")
    assert "revoked" in body["message"]
    event = denied_auth_events(api)[-1]
    assert (event["principal"], event["detail"]["reason"]) == ("runner-p", "revoked")


def test_revoked_over_the_api_is_401(api: Api, client: TestClient) -> None:
    tid = api.token_ids["runner-p"]
    resp = client.delete(f"/v1/tokens/{tid}", headers=api.auth("admin"))
    assert resp.status_code == 200, resp.text
    assert resp.json()["revoked_at"]
    body = assert_error(client.get(VALUE, headers=api.auth("runner-p")), 401)
    assert "revoked" in body["message"]


@pytest.mark.parametrize("path", [WHOAMI, VALUE])
def test_removed_principal_is_401(path: str, api: Api, client: TestClient) -> None:
    headers = api.auth("runner-p")
    assert client.get(path, headers=headers).status_code == 200
    resp = client.delete("/v1/principals/runner-p", headers=api.auth("admin"))
    assert resp.status_code == 200, resp.text
    assert_error(client.get(path, headers=headers), 401, "unauthenticated")
    assert denied_auth_events(api)[-1]["result"] == "denied"


BAD_TOKENS = {
    "garbage": ("not-a-token", "malformed"),
    "truncated": ("cwt_0123456789ab_short", "malformed"),
    "unknown-id": ("cwt_0123456789ab_" + "A" * 43, "unknown"),
}


@pytest.mark.parametrize("path", [WHOAMI, VALUE])
@pytest.mark.parametrize("kind", list(BAD_TOKENS))
def test_bad_token_is_401_and_audited(kind: str, path: str, api: Api, client: TestClient) -> None:
    token, reason = BAD_TOKENS[kind]
    resp = client.get(path, headers={"Authorization": f"Bearer {token}", "User-Agent": "probe/9"})
    body = assert_error(resp, 401, "unauthenticated")
    assert resp.headers["www-authenticate"] == "Bearer"
    assert token not in json.dumps(body)
    event = denied_auth_events(api)[-1]
    assert event["result"] == "denied"
    assert event["principal"] == "anonymous"
    assert event["detail"]["reason"] == reason
    assert event["client"] == {"ip": "testclient", "user_agent": "probe/9"}
    assert token not in json.dumps(api.events())


def test_known_id_with_wrong_secret_is_401(api: Api, client: TestClient) -> None:
    tid = api.token_ids["admin"]
    forged = f"cwt_{tid}_" + "B" * 43
    assert_error(client.get(WHOAMI, headers={"Authorization": f"Bearer {forged}"}), 401)
    event = denied_auth_events(api)[-1]
    # Not attributed to the token's owner: a guess proves nothing about who sent it.
    assert (event["principal"], event["detail"]["reason"]) == ("anonymous", "unknown")


@pytest.mark.parametrize("path", [WHOAMI, VALUE])
def test_brake_after_ten_bad_tokens(path: str, api: Api, client: TestClient) -> None:
    bad = {"Authorization": "Bearer cwt_0123456789ab_" + "C" * 43}
    statuses = [client.get(path, headers=bad).status_code for _ in range(11)]
    assert statuses == [401] * 10 + [429]
    body = assert_error(client.get(path, headers=bad), 429, "rate_limited")
    assert "testclient" in body["message"]
    # A valid token still gets in from that source (behind a proxy many clients share one
    # address: the brake must not lock them all out), and from any other.
    assert client.get(path, headers=api.auth("admin")).status_code == 200
    with TestClient(client.app, client=("192.0.2.7", 4242)) as other:
        assert other.get(path, headers=api.auth("admin")).status_code == 200
    events = api.events()
    limited = [e for e in events if e["result"] == "rate_limited"]
    assert len(limited) == 1, limited
    assert limited[0]["action"] == "authenticate"
    assert limited[0]["client"]["ip"] == "testclient"
    # The guesses before the lock-out are audited; those refused by the brake are not.
    guesses = [e for e in events if e["action"] == "authenticate" and e["result"] == "denied"]
    assert len(guesses) == 10


# -- body limit --------------------------------------------------------------------------


def test_two_mib_body_is_413(api: Api, client: TestClient) -> None:
    before = len(api.events())
    big = {
        "address": "dev/stripe/huge",
        "kind": "secret",
        "fields": {f"f{i}": "x" * 60000 for i in range(35)},
    }
    payload = json.dumps(big).encode()
    assert len(payload) > 2 * 1024 * 1024
    resp = client.post(
        "/v1/credentials",
        content=payload,
        headers={**api.auth("admin"), "Content-Type": "application/json"},
    )
    body = assert_error(resp, 413, "too_large")
    assert "bytes" in body["message"]
    # Streamed without a Content-Length: counted as it arrives.
    chunks = (payload[i : i + 65536] for i in range(0, len(payload), 65536))
    resp = client.post(
        "/v1/credentials",
        content=chunks,
        headers={**api.auth("admin"), "Content-Type": "application/json"},
    )
    assert_error(resp, 413, "too_large")
    assert len(api.events()) == before
    assert (
        client.get("/v1/credentials/dev/stripe/huge", headers=api.auth("admin")).status_code == 404
    )


# -- the hot path in front and the framework route agree ---------------------------------

VALUE_CASES = {
    "granted": ("runner-p", "prod/stripe/billing"),
    "granted-dev": ("editor-p", "dev/app/db-password"),
    "denied": ("viewer-p", "prod/stripe/billing"),
    "denied-other-service": ("runner-p", "prod/slack/alerts"),
    "not-found": ("runner-p", "prod/stripe/missing"),
    "bad-address": ("admin", "PROD/stripe/billing"),
    "bad-segment": ("admin", "prod/-stripe/billing"),
    "unknown-env": ("admin", "nowhere/stripe/billing"),
    "no-token": (None, "prod/stripe/billing"),
    "bad-token": ("garbage", "prod/stripe/billing"),
}


@pytest.mark.parametrize("case", list(VALUE_CASES))
def test_fast_path_matches_framework(
    case: str, api: Api, client: TestClient, framework_client: TestClient
) -> None:
    principal, address = VALUE_CASES[case]
    if principal is None:
        headers: dict[str, str] = {}
    elif principal == "garbage":
        headers = {"Authorization": "Bearer garbage"}
    else:
        headers = api.auth(principal)
    url = f"/v1/credentials/{address}/value"
    fast = client.get(url, headers=headers)
    slow = framework_client.get(url, headers=headers)
    assert (fast.status_code, fast.json()) == (slow.status_code, slow.json())
    for name in ("content-type", "x-credwarden-version", "www-authenticate"):
        assert fast.headers.get(name) == slow.headers.get(name), name
    if case.startswith("granted"):
        assert fast.status_code == 200
        assert CANARY in json.dumps(fast.json())
    else:
        assert 400 <= fast.status_code < 500
        assert set(fast.json()) == ERROR_KEYS


def test_fast_path_audits_like_framework(
    api: Api, client: TestClient, framework_client: TestClient
) -> None:
    url = "/v1/credentials/prod/stripe/billing/value"
    shapes = []
    for c in (client, framework_client):
        assert c.get(url, headers=api.auth("runner-p")).status_code == 200
        e = api.events()[-1]
        shapes.append((e["principal"], e["action"], e["address"], e["result"], e["client"]))
    assert shapes[0] == shapes[1]
    assert shapes[0][:4] == ("runner-p", "read", "prod/stripe/billing", "ok")


# -- the protected environment rule over HTTP --------------------------------------------


@pytest.mark.parametrize("front", ["fast", "framework"])
def test_wildcard_env_grant_never_reaches_prod(
    front: str, api: Api, client: TestClient, framework_client: TestClient
) -> None:
    w = api.warden
    w.add_principal("wild-p")
    w.grant("wild-p", "*/stripe/*", actions="read")
    _, token = w.issue_token("wild-p")
    headers = {"Authorization": f"Bearer {token.reveal()}"}
    c = client if front == "fast" else framework_client
    ok = c.get("/v1/credentials/dev/stripe/billing/value", headers=headers)
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"api_key": SECRETS["dev/stripe/billing"]}
    denied = c.get("/v1/credentials/prod/stripe/billing/value", headers=headers)
    assert_error(denied, 403, "permission_denied")
    assert SECRETS["prod/stripe/billing"] not in denied.text
    event = api.events()[-1]
    assert (event["principal"], event["action"], event["address"], event["result"]) == (
        "wild-p",
        "read",
        "prod/stripe/billing",
        "denied",
    )
    # Naming prod literally is what it takes.
    w.grant("wild-p", "prod/stripe/*", actions="read")
    assert c.get("/v1/credentials/prod/stripe/billing/value", headers=headers).status_code == 200


# -- secrets stay out of everything but reads --------------------------------------------

_CANARY_RE = re.compile(re.escape(CANARY))


def test_secrets_never_leave_but_by_reads(api: Api, client: TestClient) -> None:
    """Every route, granted and denied, then bad input carrying a secret: only the read
    routes' successful answers may hold a secret value; error bodies and the audit log never."""
    leaks: list[str] = []
    ordered = sorted(ROUTES, key=lambda r: r.method == "DELETE" or "rotate" in r.path)
    for row in ordered:
        for who in ("admin", row.granted, row.denied or "nobody"):
            resp = call(client, api, row, who)
            is_read = (row.method, row.path) in READS and resp.status_code < 300
            if not is_read and _CANARY_RE.search(resp.text):
                leaks.append(f"{row.id} as {who}: {resp.status_code}")
    secret = f"{CANARY}-typed-in"
    admin = api.auth("admin")
    bad_inputs: list[tuple[str, str, Any]] = [
        # api keys have no spaces: refused, and the message must not quote the value
        (
            "POST",
            "/v1/credentials",
            {
                "address": "dev/x/y",
                "kind": "api_key",
                "fields": {"api_key": f"{secret} with spaces"},
            },
        ),
        (
            "POST",
            "/v1/credentials",
            {"address": "dev/x/y", "kind": "api_key", "fields": {"api_key": secret + "z" * 70000}},
        ),
        (
            "POST",
            "/v1/credentials",
            {"address": "dev/x/y", "kind": "api_key", "fields": {"api_key": [secret]}},
        ),
        (
            "POST",
            "/v1/credentials",
            {"address": "dev/x/y", "kind": "nope", "fields": {"api_key": secret}},
        ),
        (
            "POST",
            "/v1/credentials",
            {"address": "dev/stripe/billing", "kind": "api_key", "fields": {"api_key": secret}},
        ),
        ("PATCH", C.format(**CRED), {"fields": {"api_key": f"{secret} x"}}),
        ("PATCH", C.format(**CRED), {"fields": {"api_key": secret}, "expected_version": 99}),
        ("PATCH", C.format(**CRED), {"fields": {"api_key": secret}, "bogus": secret}),
        ("POST", C.format(**CRED) + "/token", {"rejected": secret}),
        ("POST", "/v1/import", {"entries": [["1BAD", secret]], "env": "dev", "service": "app"}),
        (
            "POST",
            "/v1/import",
            {"entries": [["DB_PASSWORD", secret]], "env": "nowhere", "service": "app"},
        ),
    ]
    for method, url, body in bad_inputs:
        resp = client.request(method, url, headers=admin, json=body)
        assert resp.status_code >= 400, (url, resp.text)
        assert set(resp.json()) == ERROR_KEYS
        if _CANARY_RE.search(resp.text):
            leaks.append(f"{method} {url} with bad input: {resp.status_code}")
    assert leaks == []
    log = json.dumps(api.events())
    assert CANARY not in log
    resp = client.get("/v1/audit", headers=admin)
    assert resp.status_code == 200 and CANARY not in resp.text


# -- unauthenticated routes and the schema -----------------------------------------------


def test_healthz_needs_no_token(api: Api, client: TestClient) -> None:
    resp = client.get("/healthz")
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "ok" and body["store_reachable"] is True
    assert body["store"] in ("sqlite", "postgresql", "postgres")


_DENIED_READS = re.compile(
    r'^credwarden_operations_total\{action="read",result="denied"\} (\S+)$', re.M
)


def denied_reads(client: TestClient) -> float:
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    m = _DENIED_READS.search(resp.text)
    return float(m.group(1)) if m else 0.0


def test_metrics_need_no_token_and_count_denials(api: Api, client: TestClient) -> None:
    before = denied_reads(client)
    resp = client.get(VALUE, headers=api.auth("viewer-p"))
    assert resp.status_code == 403
    assert denied_reads(client) == before + 1
    text = client.get("/metrics").text
    assert "credwarden_request_seconds" in text
    assert CANARY not in text
    assert "prod/stripe/billing" not in text  # addresses are data, never labels


def test_openapi_is_3_1_with_bearer(client: TestClient) -> None:
    resp = client.get("/openapi.json")
    assert resp.status_code == 200
    schema = resp.json()
    assert schema["openapi"].startswith("3.1")
    schemes = schema["components"]["securitySchemes"]
    bearer = [n for n, s in schemes.items() if s.get("type") == "http" and s["scheme"] == "bearer"]
    assert bearer
    assert "Error" in schema["components"]["schemas"]
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            names = {n for req in op.get("security", []) for n in req}
            if path.startswith("/v1"):
                assert names & set(bearer), f"{method.upper()} {path} lacks the bearer scheme"
                assert "401" in op["responses"] and "403" in op["responses"]
            else:
                assert not names, f"{method.upper()} {path} should need no token"
    assert {"/healthz", "/metrics"} <= set(schema["paths"])
    documented = {(m.upper(), p) for p, ops in schema["paths"].items() for m in ops}
    assert {(r.method, r.path) for r in ROUTES} <= documented


def test_every_principal_has_a_working_token(api: Api, client: TestClient) -> None:
    for name in PRINCIPALS:
        resp = client.get(WHOAMI, headers=api.auth(name))
        assert resp.status_code == 200 and resp.json()["name"] == name


# -- edge inputs are client errors, never 500s -------------------------------------------

EDGE_INPUTS: list[tuple[str, str, Any]] = [
    ("GET", "/v1/credentials?kind=nope", None),
    ("GET", "/v1/audit?since=garbage", None),
    ("GET", "/v1/audit?address=BAD", None),
    ("PUT", "/v1/environments/NOPE/protection", {"protected": True}),
    ("PUT", "/v1/environments/nowhere/protection", {"protected": True}),
    ("POST", "/v1/grants", {"principal": "nobody", "pattern": "dev/*", "actions": []}),
    ("POST", "/v1/grants", {"principal": "nobody", "pattern": "dev/*"}),
    ("POST", "/v1/grants", {"principal": "ghost", "pattern": "dev/*", "role": "viewer"}),
    ("POST", "/v1/grants", {"principal": "nobody", "pattern": "../x", "role": "viewer"}),
    ("POST", "/v1/grants/revoke", {"principal": "nobody", "pattern": "dev/*"}),
    ("POST", "/v1/principals/ghost/tokens", {}),
    ("GET", "/v1/principals/ghost", None),
    ("DELETE", "/v1/tokens/zzzz", None),
    ("POST", "/v1/import", {"entries": [["___", "v"]], "env": "dev", "service": "app"}),
    ("POST", "/v1/import", {"entries": [["A", "v"], ["a", "w"]], "env": "dev", "service": "app"}),
    ("POST", "/v1/import", {"entries": [], "env": "dev", "service": "app"}),
    ("POST", "/v1/credentials", {"address": "dev/x/y", "kind": "oauth2", "fields": {}}),
    ("POST", "/v1/credentials", {"address": "dev/x/y", "kind": "env", "fields": {"": "v"}}),
    (
        "POST",
        "/v1/credentials",
        {"address": "dev/x/y", "kind": "api_key", "fields": {"api_key": "k"}, "expires_at": "x"},
    ),
    # A rotation period so large that health arithmetic on it overflowed (was a 500).
    (
        "POST",
        "/v1/credentials",
        {
            "address": "dev/x/y",
            "kind": "api_key",
            "fields": {"api_key": "k"},
            "rotate_every": 10**30,
        },
    ),
    ("PATCH", C.format(**CRED), {"rotate_every": 10**30}),
    ("PATCH", C.format(**CRED), {"clear": ["tags"]}),
    ("PATCH", C.format(**CRED), {"unset": ["api_key"]}),
    ("PATCH", C.format(**CRED), {"expires_at": "2020-13-45"}),
    ("PATCH", C.format(**CRED), {}),
    ("POST", C.format(**CRED) + "/rollback", {"to_version": 10**30}),
    ("POST", C.format(**CRED) + "/rollback", {"to_version": 2}),
    ("GET", C.format(**CRED) + "/token", None),
    ("GET", C.format(**OAUTH) + "/token?subject=someone", None),
    ("GET", "/v1/env-vars?env=nowhere", None),
    ("POST", "/v1/environments", {"name": "prod"}),
    ("GET", "/v1/credentials/prod/stripe/" + "a" * 70 + "/value", None),
    ("GET", "/v1/credentials/prod/stripe/billing/value?x=1", None),
]


def test_edge_inputs_are_client_errors(api: Api, client: TestClient) -> None:
    problems = []
    for method, url, body in EDGE_INPUTS:
        resp = client.request(method, url, headers=api.auth("admin"), json=body)
        if resp.status_code >= 500 or (resp.status_code >= 400 and set(resp.json()) != ERROR_KEYS):
            problems.append(f"{method} {url}: {resp.status_code} {resp.text[:200]}")
    assert problems == []
    patched = client.get(C.format(**CRED), headers=api.auth("admin")).json()
    assert patched["rotate_every"] != 10**30
