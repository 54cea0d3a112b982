"""The REST route table: one row per `/v1` route, served by `api/` and called by the remote
client (`remote/client.py`), so the two cannot drift apart (tests/api/test_routes.py checks the app
against this table both ways).

Each row names the facade operation the route performs. Facade operations with no route
are listed in LOCAL_ONLY with the reason: they need the store or the master key on the
machine that runs them.
"""

from __future__ import annotations

from typing import NamedTuple

CRED = "/v1/credentials/{env}/{service}/{name}"


class Route(NamedTuple):
    name: str
    """Unique; also the FastAPI route's name."""
    method: str
    path: str
    operation: str
    """The facade operation (a `Facade` method name) the route performs."""


ROUTES: tuple[Route, ...] = (
    # credentials
    Route("credentials.list", "GET", "/v1/credentials", "list"),
    Route("credentials.add", "POST", "/v1/credentials", "add"),
    Route("credentials.describe", "GET", CRED, "describe"),
    Route("credentials.update", "PATCH", CRED, "update"),
    Route("credentials.remove", "DELETE", CRED, "remove"),
    Route("credentials.value", "GET", CRED + "/value", "read"),
    Route("credentials.history", "GET", CRED + "/versions", "history"),
    Route("credentials.rollback", "POST", CRED + "/rollback", "rollback"),
    # use: tokens, headers, live checks
    Route("credentials.token", "GET", CRED + "/token", "access_token"),
    Route("credentials.token_rejected", "POST", CRED + "/token", "access_token"),
    Route("credentials.headers", "GET", CRED + "/headers", "headers"),
    Route("credentials.test", "POST", CRED + "/test", "test"),
    # OAuth connections through the server
    Route("connect.start", "POST", CRED + "/connect", "connect_start"),
    Route("connect.status", "GET", "/v1/connect/{flow}", "connect_status"),
    # environments, import, env vars
    Route("import", "POST", "/v1/import", "import_entries"),
    Route("env_vars", "GET", "/v1/env-vars", "env_vars"),
    Route("environments.list", "GET", "/v1/environments", "protected_environments"),
    Route("environments.add", "POST", "/v1/environments", "add_environment"),
    Route(
        "environments.protect", "PUT", "/v1/environments/{env}/protection", "protect_environment"
    ),
    # access
    Route("whoami", "GET", "/v1/whoami", "whoami"),
    Route("principals.list", "GET", "/v1/principals", "principals"),
    Route("principals.add", "POST", "/v1/principals", "add_principal"),
    Route("principals.show", "GET", "/v1/principals/{name}", "principal_info"),
    Route("principals.remove", "DELETE", "/v1/principals/{name}", "remove_principal"),
    Route("tokens.issue", "POST", "/v1/principals/{name}/tokens", "issue_token"),
    Route("tokens.list", "GET", "/v1/tokens", "tokens"),
    Route("tokens.revoke", "DELETE", "/v1/tokens/{token_id}", "revoke_token"),
    Route("grants.list", "GET", "/v1/grants", "grants"),
    Route("grants.add", "POST", "/v1/grants", "grant"),
    Route("grants.revoke", "POST", "/v1/grants/revoke", "revoke_grant"),
    # reports
    Route("reports.expiring", "GET", "/v1/reports/expiring", "report_expiring"),
    Route("reports.rotation", "GET", "/v1/reports/rotation", "report_rotation"),
    Route("reports.unused", "GET", "/v1/reports/unused", "report_unused"),
    Route("reports.permissions", "GET", "/v1/reports/permissions", "review_permissions"),
    # audit and keys
    Route("audit.list", "GET", "/v1/audit", "audit_events"),
    Route("audit.verify", "POST", "/v1/audit/verify", "verify_audit"),
    Route("keys.rotate", "POST", "/v1/keys/rotate", "rotate_key"),
)

BY_NAME: dict[str, Route] = {r.name: r for r in ROUTES}

LOCAL_ONLY: dict[str, str] = {
    "get": "a remote get is the value route (credentials.value) with ?field= or ?main=true",
    "show": "the describe route (credentials.describe) with ?versions=true: one request, one event",
    "aget_field": "the value route's handler on the server's event loop",
    "aread_values": "the value route's handler on the server's event loop",
    "auth": "an httpx.Auth built on access_token, in the caller's process",
    "connect": "runs a loopback listener or a device flow here; remotely: connect_start",
    "connect_finish": "the server's /oauth/callback, not a /v1 route",
    "refresh_due": "the scheduler's job on the server",
    "authenticate": "checks an API token against the store: the server does it per request",
    "remembered": "the server's in-memory token cache",
    "note_lockout": "the server's failed-authentication brake",
    "flush_token_use": "the scheduler's job on the server",
    "health": "/healthz, outside /v1 (no token)",
    "acting_as": "the server acts for each request's principal",
}


def path_of(name: str, **params: str) -> str:
    """The path of route `name` with its `{params}` filled in (already URL-quoted)."""
    return BY_NAME[name].path.format(**params)


__all__ = ["BY_NAME", "LOCAL_ONLY", "ROUTES", "Route", "path_of"]
