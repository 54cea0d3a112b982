"""The REST API: every facade operation under /v1, authenticated by bearer token, one error shape.

Routes parse, call the facade as the authenticated principal, and render; the
facade checks the grants and writes the audit event. Reads of values and tokens
(the workflow hot path) are `async` and group-commit their events off the loop;
everything else runs in the thread pool.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import CredwardenError, UsageError, ValidationError
from ..secret import Secret
from ..timeutil import MAX_SPAN_S
from ..warden import Warden
from . import errors as api_errors
from . import metrics
from .auth import ApiCaller, FailureBrake, authenticate
from .limits import BodyLimit, Timing

Days = Annotated[int, Query(ge=1, le=MAX_SPAN_S // 86400, description="A look-back in days.")]
Within = Annotated[int, Query(ge=1, le=MAX_SPAN_S, description="Seconds ahead.")]

MAX_BODY = 1 << 20
# Rotation periods are seconds; bounded so that date arithmetic on them (health) cannot
# overflow: a 10**30 would be a 500 on every later describe and listing.
MAX_ROTATE_EVERY = 100 * 366 * 86400
SEG = r"^[a-z0-9][a-z0-9._-]{0,63}$"
Env = Annotated[str, Field(pattern=SEG)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewCredential(_Body):
    address: str = Field(max_length=200)
    kind: str = Field(max_length=64)
    fields: dict[str, Annotated[str, Field(max_length=65536)]] = Field(default_factory=dict)
    provider: str | None = Field(default=None, max_length=100)
    description: str | None = Field(default=None, max_length=2000)
    owner: str | None = Field(default=None, max_length=2000)
    tags: dict[str, str] = Field(default_factory=dict)
    links: list[str] = Field(default_factory=list)
    expires_at: str | None = Field(default=None, max_length=64)
    rotate_every: int | None = Field(default=None, gt=0, le=MAX_ROTATE_EVERY)


class CredentialChange(_Body):
    fields: dict[str, Annotated[str, Field(max_length=65536)]] = Field(default_factory=dict)
    unset: list[str] = Field(default_factory=list)
    expected_version: int | None = None
    note: str = Field(default="updated", max_length=200)
    main: str | None = Field(
        default=None, max_length=65536, description="a new value of the kind's main field"
    )
    description: str | None = Field(default=None, max_length=2000)
    owner: str | None = Field(default=None, max_length=2000)
    provider: str | None = Field(default=None, max_length=100)
    tags: dict[str, str] | None = None
    add_tags: dict[str, str] | None = None
    links: list[str] | None = None
    add_links: list[str] | None = None
    expires_at: str | None = Field(default=None, max_length=64)
    rotate_every: int | None = Field(default=None, gt=0, le=MAX_ROTATE_EVERY)
    clear: list[str] = Field(
        default_factory=list, description="metadata to clear: description, owner, ..."
    )


class Rollback(_Body):
    to_version: int = Field(ge=1)
    expected_version: int | None = None


class TokenRequest(_Body):
    scopes: list[Annotated[str, Field(max_length=500)]] = Field(default_factory=list)
    subject: str | None = Field(default=None, max_length=320)
    min_ttl: int = Field(default=60, ge=0, le=86400)
    rejected: str | None = Field(
        default=None, max_length=16384, description="a token an API answered 401 to"
    )


class LiveTest(_Body):
    vars: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(default=15.0, gt=0, le=120)


class ImportRequest(_Body):
    entries: list[tuple[str, str]] = Field(max_length=10000)
    env: Env
    service: Env
    overwrite: bool = False


class NewPrincipal(_Body):
    name: str = Field(pattern=SEG)
    type: str = Field(default="workflow", pattern="^(user|workflow|service)$")
    owner: str | None = Field(default=None, max_length=500)
    description: str | None = Field(default=None, max_length=500)
    role: str | None = Field(default=None, pattern="^(admin|editor|runner|viewer)$")
    pattern: str = Field(default="*", max_length=200)


class NewToken(_Body):
    expires_in: int | None = Field(default=None, gt=0, le=10 * 365 * 86400)
    description: str | None = Field(default=None, max_length=500)


class NewGrant(_Body):
    principal: str = Field(pattern=SEG)
    pattern: str = Field(max_length=200)
    actions: list[str] | None = None
    role: str | None = Field(default=None, pattern="^(admin|editor|runner|viewer)$")


class GrantRevocation(_Body):
    principal: str = Field(pattern=SEG)
    pattern: str = Field(max_length=200)
    actions: list[str] | None = None


class NewEnvironment(_Body):
    name: str = Field(pattern=SEG)


class Protection(_Body):
    protected: bool = True


class ConnectStart(_Body):
    provider: str = Field(max_length=100)
    client: str = Field(max_length=200, description="the oauth2_client credential's address")
    scopes: list[Annotated[str, Field(max_length=500)]] = Field(
        default_factory=list, max_length=100
    )
    vars: dict[str, Annotated[str, Field(max_length=256)]] = Field(
        default_factory=dict, description="the provider's template vars (shop, tenant, ...)"
    )


CALLBACK_PATH = "/oauth/callback"
_PAGE = """<!doctype html><meta charset="utf-8"><title>credwarden</title>
<body style="font-family:sans-serif;margin:3em"><h1>{title}</h1><p>{text}</p></body>"""
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
}


def check_public_url(url: str) -> str:
    """The server's public base URL (where browsers reach it), without a trailing slash."""
    value = url.strip().rstrip("/")
    try:
        parts = urlsplit(value)
        ok = (
            parts.scheme in ("http", "https")
            and bool(parts.hostname)
            and parts.username is None
            and parts.password is None
            and not parts.query
            and not parts.fragment
            and len(value) <= 1000
        )
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        ok = False
    if not ok:
        raise UsageError(
            f"the public URL {value[:100]!r} is not an http(s) base URL",
            hint="e.g. https://credwarden.example.com (no query, fragment or user info)",
        )
    return value


def _page(status: int, title: str, text: str) -> HTMLResponse:
    body = _PAGE.format(title=html.escape(title), text=html.escape(text))
    return HTMLResponse(body, status_code=status, headers=_PAGE_HEADERS)


_bearer = HTTPBearer(auto_error=False, description="an API token (cwt_...)")


def _caller(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiCaller:
    """The authenticated caller (401/429 otherwise); declared for OpenAPI's security scheme.
    A plain function: FastAPI runs it in its thread pool, so a token check that reads the
    store (or audits a failure) never holds up the event loop."""
    ip = request.client.host if request.client else "unknown"
    return authenticate(
        request.app.state.warden,
        request.app.state.brake,
        request.headers.get("authorization"),
        ip,
        request.headers.get("user-agent"),
    )


Caller = Annotated[ApiCaller, Depends(_caller)]


def create_app(
    warden: Warden, *, brake: FailureBrake | None = None, public_url: str | None = None
) -> FastAPI:
    """The API over one opened facade (shared by every request). `public_url` is where
    browsers reach this server (its OAuth redirect URI is `<public_url>/oauth/callback`);
    without it, connecting through the server is refused."""
    brake = brake or FailureBrake()
    warden.event_hook = metrics.count
    app = FastAPI(
        title="credwarden",
        version="1",
        description="Credentials for workflows: encrypted, refreshed, least-privilege, audited.",
        docs_url=None,
        redoc_url=None,
        # A path with a trailing slash is just an unknown path: a redirect would be built
        # from the request's Host header (an open redirect to wherever the caller names).
        redirect_slashes=False,
    )
    app.state.warden = warden
    app.state.brake = brake
    app.state.public_url = check_public_url(public_url) if public_url else None

    def run(c: ApiCaller, fn: Callable[[], Any]) -> Any:
        with warden.acting_as(c.principal, client=c.client):
            return fn()

    async def arun(c: ApiCaller, fn: Callable[[], Awaitable[Any]]) -> Any:
        with warden.acting_as(c.principal, client=c.client):
            return await fn()

    v1 = APIRouter(
        prefix="/v1",
        redirect_slashes=False,
        responses=api_errors.error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503),
    )

    def addr(env: str, service: str, name: str) -> str:
        return f"{env}/{service}/{name}"

    # -- credentials ---------------------------------------------------------------------

    @v1.get("/credentials", summary="Credentials the caller may describe")
    def list_credentials(
        c: Caller,
        env: Annotated[str | None, Query(pattern=SEG)] = None,
        service: Annotated[str | None, Query(pattern=SEG)] = None,
        kind: Annotated[str | None, Query(max_length=64)] = None,
        health: Annotated[str | None, Query(max_length=32)] = None,
    ) -> list[dict[str, Any]]:
        infos = run(c, lambda: warden.list(env=env, service=service, kind=kind, health=health))
        return [i.to_dict() for i in infos]

    @v1.post("/credentials", status_code=201, summary="Add a credential (write)")
    def add_credential(c: Caller, body: NewCredential) -> dict[str, Any]:
        meta = body.model_dump(exclude={"address", "kind", "fields"})
        info = run(c, lambda: warden.add(body.address, body.kind, body.fields, **meta))
        return dict(info.to_dict())

    @v1.get("/credentials/{env}/{service}/{name}", summary="Metadata, health, versions (describe)")
    def describe(
        c: Caller, env: str, service: str, name: str, versions: bool = False
    ) -> dict[str, Any]:
        address = addr(env, service, name)
        if not versions:
            return dict(run(c, lambda: warden.describe(address)).to_dict())
        info, found = run(c, lambda: warden.show(address))  # one operation, one event
        return {**info.to_dict(), "versions": [v.to_dict() for v in found]}

    @v1.patch("/credentials/{env}/{service}/{name}", summary="Change fields or metadata (write)")
    def update(
        c: Caller, env: str, service: str, name: str, body: CredentialChange
    ) -> dict[str, Any]:
        meta: dict[str, Any] = {
            k: v
            for k in (
                "description",
                "owner",
                "provider",
                "tags",
                "add_tags",
                "links",
                "add_links",
                "expires_at",
                "rotate_every",
            )
            if (v := getattr(body, k)) is not None
        }
        for k in body.clear:
            if k not in ("description", "owner", "provider", "expires_at", "rotate_every"):
                raise ValidationError(
                    f"cannot clear {k[:32]!r}",
                    hint="clearable: description, owner, provider, expires_at, rotate_every",
                )
            meta[k] = None
        info = run(
            c,
            lambda: warden.update(
                addr(env, service, name),
                fields=body.fields,
                unset=body.unset,
                main=body.main,
                expected_version=body.expected_version,
                note=body.note,
                **meta,
            ),
        )
        return dict(info.to_dict())

    @v1.delete("/credentials/{env}/{service}/{name}", summary="Remove (write; revokes a grant)")
    def remove(
        c: Caller,
        env: str,
        service: str,
        name: str,
        expected_version: int | None = None,
        revoke: bool = True,
    ) -> dict[str, Any]:
        revoked = run(
            c,
            lambda: warden.remove(
                addr(env, service, name), expected_version=expected_version, revoke=revoke
            ),
        )
        return {"removed": addr(env, service, name), "revocation": revoked}

    @v1.get(
        "/credentials/{env}/{service}/{name}/value",
        summary="The fields' values (read; audited before they are returned)",
    )
    async def value(
        c: Caller,
        env: str,
        service: str,
        name: str,
        field: Annotated[str | None, Query(max_length=128, description="only this field")] = None,
        main: Annotated[bool, Query(description="only the kind's main field")] = False,
    ) -> dict[str, str]:
        address = addr(env, service, name)
        if field is not None or main:
            ref = f"{address}#{field}" if field is not None else address
            picked, value = await arun(c, lambda: warden.aget_field(ref))
            return {picked: value}
        version, values = await arun(c, lambda: warden.aread_values(address))
        return JSONResponse(  # type: ignore[return-value]
            values, headers={"x-credwarden-version": str(version)}
        )

    def token_of(
        c: Caller,
        address: str,
        scopes: list[str],
        subject: str | None,
        min_ttl: int,
        rejected: str | None,
    ) -> dict[str, Any]:
        tok = run(
            c,
            lambda: warden.access_token(
                address,
                scopes=scopes,
                subject=subject,
                leeway=min_ttl,
                rejected=Secret(rejected) if rejected else None,
            ),
        )
        return {"access_token": tok.reveal(), "token_type": "Bearer"}

    @v1.get(
        "/credentials/{env}/{service}/{name}/token",
        summary="A valid access token, refreshed or minted if needed (use)",
    )
    def token(
        c: Caller,
        env: str,
        service: str,
        name: str,
        scope: Annotated[list[Annotated[str, Field(max_length=500)]] | None, Query()] = None,
        subject: Annotated[str | None, Query(max_length=320)] = None,
        min_ttl: Annotated[int, Query(ge=0, le=86400)] = 60,
    ) -> dict[str, Any]:
        return token_of(c, addr(env, service, name), scope or [], subject, min_ttl, None)

    @v1.post(
        "/credentials/{env}/{service}/{name}/token",
        summary="An access token; with `rejected`, refreshed unless already replaced (use)",
    )
    def token_post(
        c: Caller, env: str, service: str, name: str, body: TokenRequest
    ) -> dict[str, Any]:
        return token_of(
            c, addr(env, service, name), body.scopes, body.subject, body.min_ttl, body.rejected
        )

    @v1.get(
        "/credentials/{env}/{service}/{name}/headers",
        summary="The HTTP headers that authenticate with it (use for OAuth; read for static keys)",
    )
    def headers(c: Caller, env: str, service: str, name: str) -> dict[str, str]:
        hs = run(c, lambda: warden.headers(addr(env, service, name)))
        return {k: v.reveal() for k, v in hs.items()}

    @v1.post(
        "/credentials/{env}/{service}/{name}/connect",
        status_code=201,
        summary="Start an OAuth connection whose redirect comes to this server (write)",
    )
    def connect_start(
        c: Caller, env: str, service: str, name: str, body: ConnectStart, request: Request
    ) -> dict[str, Any]:
        base = request.app.state.public_url
        if not base:
            raise UsageError(
                "this server has no public URL for OAuth redirects",
                hint="start it with `credwarden serve --public-url https://HOST`",
            )
        out = run(
            c,
            lambda: warden.connect_start(
                addr(env, service, name),
                provider=body.provider,
                client=body.client,
                scopes=body.scopes,
                redirect_uri=base + CALLBACK_PATH,
                template_vars=body.vars,
            ),
        )
        return dict(out)

    @v1.get(
        "/connect/{flow}",
        summary="Where a connect started here stands: pending, done, failed, expired, unknown",
    )
    def connect_status(
        c: Caller, flow: Annotated[str, Path(pattern="^[0-9a-f]{64}$")]
    ) -> dict[str, Any]:
        return dict(run(c, lambda: warden.connect_status(flow)))

    @v1.get("/credentials/{env}/{service}/{name}/versions", summary="Versions (describe)")
    def history(c: Caller, env: str, service: str, name: str) -> list[dict[str, Any]]:
        return [v.to_dict() for v in run(c, lambda: warden.history(addr(env, service, name)))]

    @v1.post("/credentials/{env}/{service}/{name}/rollback", summary="Roll back (write)")
    def rollback(c: Caller, env: str, service: str, name: str, body: Rollback) -> dict[str, Any]:
        info = run(
            c,
            lambda: warden.rollback(
                addr(env, service, name), body.to_version, expected_version=body.expected_version
            ),
        )
        return dict(info.to_dict())

    @v1.post("/credentials/{env}/{service}/{name}/test", summary="Live check (use)")
    def live_test(c: Caller, env: str, service: str, name: str, body: LiveTest) -> dict[str, Any]:
        outcome = run(
            c,
            lambda: warden.test(
                addr(env, service, name), template_vars=body.vars, timeout=body.timeout
            ),
        )
        return dict(outcome._asdict())

    @v1.post("/import", summary="Import variables as secrets, all or nothing (write)")
    def import_entries(c: Caller, body: ImportRequest) -> list[dict[str, Any]]:
        infos = run(
            c,
            lambda: warden.import_entries(
                body.entries, env=body.env, service=body.service, overwrite=body.overwrite
            ),
        )
        return [i.to_dict() for i in infos]

    @v1.get("/env-vars", summary="Environment variables of readable credentials (read)")
    def env_vars(
        c: Caller,
        env: Annotated[str, Query(pattern=SEG)],
        only: Annotated[list[Annotated[str, Field(max_length=200)]] | None, Query()] = None,
    ) -> dict[str, str]:
        out = run(c, lambda: warden.env_vars(env=env, only=only or ()))
        return {k: v.reveal() for k, v in out.items()}

    # -- environments --------------------------------------------------------------------

    @v1.get("/environments", summary="Environments and which are protected")
    def environments(c: Caller) -> dict[str, list[str]]:
        protected = run(c, warden.protected_environments)  # re-read: another node may add one
        return {"environments": list(warden.environments), "protected": protected}

    @v1.post("/environments", status_code=201, summary="Add an environment (admin)")
    def add_environment(c: Caller, body: NewEnvironment) -> dict[str, list[str]]:
        return {"environments": run(c, lambda: warden.add_environment(body.name))}

    @v1.put("/environments/{env}/protection", summary="Protect or unprotect (admin)")
    def protect(c: Caller, env: str, body: Protection) -> dict[str, list[str]]:
        return {"protected": run(c, lambda: warden.protect_environment(env, body.protected))}

    # -- principals, tokens, grants ------------------------------------------------------

    @v1.get("/whoami", summary="The authenticated principal")
    def whoami(c: Caller) -> dict[str, Any]:
        return {"name": c.principal.name, "type": c.principal.type, "token": c.client["token"]}

    @v1.get("/principals", summary="Principals (admin)")
    def principals(c: Caller) -> list[dict[str, Any]]:
        return [p.to_dict() for p in run(c, warden.principals)]

    @v1.post("/principals", status_code=201, summary="Add a principal (admin)")
    def add_principal(c: Caller, body: NewPrincipal) -> dict[str, Any]:
        fields = body.model_dump(exclude={"name"})
        return dict(run(c, lambda: warden.add_principal(body.name, **fields)).to_dict())

    @v1.get("/principals/{name}", summary="A principal with its grants and tokens (admin)")
    def principal(c: Caller, name: str) -> dict[str, Any]:
        return dict(run(c, lambda: warden.principal_info(name)))

    @v1.delete("/principals/{name}", summary="Remove a principal, its grants and tokens (admin)")
    def remove_principal(c: Caller, name: str) -> dict[str, int]:
        return dict(run(c, lambda: warden.remove_principal(name)))

    @v1.post(
        "/principals/{name}/tokens",
        status_code=201,
        summary="A new API token (shown once; stored hashed) (admin)",
    )
    def issue_token(c: Caller, name: str, body: NewToken) -> dict[str, Any]:
        rec, tok = run(
            c,
            lambda: warden.issue_token(
                name, expires_in=body.expires_in, description=body.description
            ),
        )
        return {**rec, "token": tok.reveal()}

    @v1.get("/tokens", summary="API tokens, without their secrets (admin)")
    def tokens(
        c: Caller, principal: Annotated[str | None, Query(pattern=SEG)] = None
    ) -> list[dict[str, Any]]:
        return list(run(c, lambda: warden.tokens(principal)))

    @v1.delete("/tokens/{token_id}", summary="Revoke an API token (admin)")
    def revoke_token(c: Caller, token_id: str) -> dict[str, Any]:
        return dict(run(c, lambda: warden.revoke_token(token_id)))

    @v1.get("/grants", summary="Grants (admin)")
    def grants(
        c: Caller, principal: Annotated[str | None, Query(pattern=SEG)] = None
    ) -> list[dict[str, Any]]:
        return [g.to_dict() for g in run(c, lambda: warden.grants(principal))]

    @v1.post("/grants", status_code=201, summary="Grant actions or a role on a pattern (admin)")
    def grant(c: Caller, body: NewGrant) -> dict[str, Any]:
        g = run(
            c,
            lambda: warden.grant(
                body.principal, body.pattern, actions=body.actions, role=body.role
            ),
        )
        return dict(g.to_dict())

    @v1.post("/grants/revoke", summary="Revoke actions of a grant, or all of it (admin)")
    def revoke_grant(c: Caller, body: GrantRevocation) -> dict[str, Any]:
        left = run(
            c,
            lambda: warden.revoke_grant(
                body.principal,
                body.pattern,
                actions=",".join(body.actions) if body.actions else None,
            ),
        )
        return {"left": left.to_dict() if left else None}

    # -- reports -------------------------------------------------------------------------

    @v1.get("/reports/expiring", summary="Credentials expired or expiring soon (filtered)")
    def report_expiring(
        c: Caller,
        within: Within = 14 * 86400,
    ) -> list[dict[str, Any]]:
        return list(run(c, lambda: warden.report_expiring(within=within)))

    @v1.get("/reports/rotation", summary="Credentials whose rotation is overdue (filtered)")
    def report_rotation(c: Caller) -> list[dict[str, Any]]:
        return list(run(c, warden.report_rotation))

    @v1.get("/reports/unused", summary="Credentials nobody read or used lately (filtered)")
    def report_unused(c: Caller, days: Days = 90) -> list[dict[str, Any]]:
        return list(run(c, lambda: warden.report_unused(days=days)))

    @v1.get("/reports/permissions", summary="The least-privilege review of grants (admin)")
    def review_permissions(
        c: Caller,
        days: Days = 90,
        principal: Annotated[str | None, Query(max_length=64)] = None,
        flagged: bool = False,
    ) -> list[dict[str, Any]]:
        review = warden.review_permissions
        return list(run(c, lambda: review(days=days, principal=principal, flagged=flagged)))

    # -- audit and keys ------------------------------------------------------------------

    @v1.get("/audit", summary="Audit events, oldest first (admin)")
    def audit(
        c: Caller,
        address: Annotated[str | None, Query(max_length=200)] = None,
        principal: Annotated[str | None, Query(max_length=100)] = None,
        since: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int | None, Query(ge=1, le=100000)] = None,
    ) -> list[dict[str, Any]]:
        events = run(
            c,
            lambda: warden.audit_events(
                address=address, principal=principal, since=since, limit=limit
            ),
        )
        return [e.to_dict() for e in events]

    @v1.post("/audit/verify", summary="Check the whole audit chain (admin)")
    def audit_verify(c: Caller) -> dict[str, Any]:
        return dict(run(c, warden.verify_audit).to_dict())

    @v1.post("/keys/rotate", summary="New key-encryption key, data keys re-wrapped (admin)")
    def rotate_key(c: Caller) -> dict[str, int]:
        return dict(run(c, warden.rotate_key))

    app.include_router(v1)

    # -- unauthenticated: health and metrics ---------------------------------------------

    @app.get("/healthz", summary="Liveness and the store's reachability")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", **warden.health()}

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    def prom() -> Response:
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4")

    # -- unauthenticated: the OAuth redirect (the state is the capability) ----------------

    @app.get(CALLBACK_PATH, include_in_schema=False, response_class=HTMLResponse)
    def oauth_callback(request: Request) -> HTMLResponse:
        ip = request.client.host if request.client else "unknown"
        client: dict[str, Any] = {"ip": ip, "via": "oauth_callback"}
        agent = request.headers.get("user-agent")
        if agent:
            client["user_agent"] = agent[:200]
        pairs = request.query_params.multi_items()
        query: dict[str, str] = {}
        for k, v in pairs[:50]:
            if k in query or len(v) > 8192:  # RFC 6749 §3.1: no parameter twice
                return _page(400, "Not connected", "The redirect is malformed.")
            query[k] = v
        if brake.blocked(ip):
            return _page(429, "Not connected", "Too many failed attempts: wait a minute.")
        state = query.get("state")
        if not state:
            if "error" in query:
                return _page(400, "Not connected", "The provider did not grant the authorization.")
            return _page(400, "Not connected", "The redirect carried no state.")
        try:
            info = warden.connect_finish(state, query, client=client)
        except CredwardenError as exc:
            if isinstance(exc, UsageError) and brake.failed(ip):
                warden.note_lockout(ip, client)
            text = exc.message
            for value in (query.get("code"), state):
                if value:
                    text = text.replace(value, "...")
            return _page(400, "Not connected", text[:300])
        except Exception as exc:
            logging.getLogger("credwarden.api").error(
                "internal error in the OAuth callback: %s", type(exc).__name__
            )
            return _page(500, "Not connected", "Internal error: see the server log.")
        return _page(200, "Connected", f"Connected {info.address}. You can close this window.")

    # -- errors: one shape ---------------------------------------------------------------

    @app.exception_handler(CredwardenError)
    async def on_error(request: Request, exc: CredwardenError) -> JSONResponse:
        status = api_errors.status_of(exc)
        headers = {"www-authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(exc.to_dict(), status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for e in exc.errors()[:5]:
            where = ".".join(str(p) for p in e.get("loc", ()))
            problems.append(f"{where}: {e.get('msg', 'invalid')}")
        return JSONResponse(
            api_errors.body(
                "invalid_input",
                "the request is malformed: " + "; ".join(problems),
                "see /openapi.json for the expected shape",
                2,
            ),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "no_route", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            api_errors.body(code, str(exc.detail)[:200], None, 4 if exc.status_code == 404 else 2),
            status_code=exc.status_code,
        )

    @app.exception_handler(Exception)
    async def on_bug(request: Request, exc: Exception) -> JSONResponse:
        # Never the exception's text: it might hold anything.
        import logging

        logging.getLogger("credwarden.api").error("internal error: %s", type(exc).__name__)
        return JSONResponse(
            api_errors.body("internal", "internal error", "see the server log", 1),
            status_code=500,
        )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = (
                api_errors.ERROR_SCHEMA
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(Timing)
    app.add_middleware(BodyLimit, limit=MAX_BODY)
    return app
