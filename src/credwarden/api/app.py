"""The REST API: every facade operation under /v1, authenticated by bearer token, one error shape.

Routes parse, call the facade as the authenticated principal, and render; the
facade checks the grants and writes the audit event. Reads of values and tokens
(the workflow hot path) are `async` and group-commit their events off the loop;
everything else runs in the thread pool.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import CredwardenError, ValidationError
from ..secret import Secret
from ..warden import Warden
from . import errors as api_errors
from . import metrics
from .auth import ApiCaller, FailureBrake, authenticate
from .limits import BodyLimit, Timing

MAX_BODY = 1 << 20
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
    rotate_every: int | None = Field(default=None, gt=0)


class CredentialChange(_Body):
    fields: dict[str, Annotated[str, Field(max_length=65536)]] = Field(default_factory=dict)
    unset: list[str] = Field(default_factory=list)
    expected_version: int | None = None
    note: str = Field(default="updated", max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    owner: str | None = Field(default=None, max_length=2000)
    provider: str | None = Field(default=None, max_length=100)
    tags: dict[str, str] | None = None
    add_tags: dict[str, str] | None = None
    links: list[str] | None = None
    add_links: list[str] | None = None
    expires_at: str | None = Field(default=None, max_length=64)
    rotate_every: int | None = Field(default=None, gt=0)
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


_bearer = HTTPBearer(auto_error=False, description="an API token (cwt_...)")


async def _caller(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiCaller:
    """The authenticated caller (401/429 otherwise); declared for OpenAPI's security scheme."""
    ip = request.client.host if request.client else "unknown"
    return authenticate(
        request.app.state.warden,
        request.app.state.brake,
        request.headers.get("authorization"),
        ip,
        request.headers.get("user-agent"),
    )


Caller = Annotated[ApiCaller, Depends(_caller)]


def create_app(warden: Warden, *, brake: FailureBrake | None = None) -> FastAPI:
    """The API over one opened facade (shared by every request)."""
    brake = brake or FailureBrake()
    warden.event_hook = metrics.count
    app = FastAPI(
        title="credwarden",
        version="1",
        description="Credentials for workflows: encrypted, refreshed, least-privilege, audited.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.warden = warden
    app.state.brake = brake

    def run(c: ApiCaller, fn: Callable[[], Any]) -> Any:
        with warden.acting_as(c.principal, client=c.client):
            return fn()

    async def arun(c: ApiCaller, fn: Callable[[], Awaitable[Any]]) -> Any:
        with warden.acting_as(c.principal, client=c.client):
            return await fn()

    v1 = APIRouter(
        prefix="/v1",
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
        info = run(
            c,
            lambda: warden.add(
                body.address,
                body.kind,
                body.fields,
                provider=body.provider,
                description=body.description,
                owner=body.owner,
                tags=body.tags,
                links=body.links,
                expires_at=body.expires_at,
                rotate_every=body.rotate_every,
            ),
        )
        return dict(info.to_dict())

    @v1.get("/credentials/{env}/{service}/{name}", summary="Metadata, health, versions (describe)")
    def describe(c: Caller, env: str, service: str, name: str) -> dict[str, Any]:
        return dict(run(c, lambda: warden.describe(addr(env, service, name))).to_dict())

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
    async def value(c: Caller, env: str, service: str, name: str) -> dict[str, str]:
        version, values = await arun(c, lambda: warden.aread_values(addr(env, service, name)))
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
        summary="The HTTP headers that authenticate with it (use; read for static secrets)",
    )
    def headers(c: Caller, env: str, service: str, name: str) -> dict[str, str]:
        hs = run(c, lambda: warden.headers(addr(env, service, name)))
        return {k: v.reveal() for k, v in hs.items()}

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
        rec = run(
            c,
            lambda: warden.add_principal(
                body.name,
                type=body.type,
                owner=body.owner,
                description=body.description,
                role=body.role,
                pattern=body.pattern,
            ),
        )
        return dict(rec.to_dict())

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
