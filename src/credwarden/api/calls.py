"""What every /v1 route shares: the authenticated caller, the facade acting for it, the
route table's method, path and name for each handler, and the path parameters' bounds."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..routes import BY_NAME
from ..warden import Warden
from . import errors as api_errors
from .auth import ApiCaller, authenticate

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

SEG = r"^[a-z0-9][a-z0-9._-]{0,63}$"
"""An address segment (environment, service or name), as `address.py` parses them."""
FIELD = r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$"
"""A field name."""

Seg = Annotated[str, Path(pattern=SEG, max_length=64, description="an address segment")]

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


class Call:
    """One request's view of the facade: operations run as its authenticated principal."""

    __slots__ = ("caller", "warden")

    def __init__(self, warden: Warden, caller: ApiCaller) -> None:
        self.warden = warden
        self.caller = caller

    def run(self, fn: Callable[[Warden], T]) -> T:
        with self.warden.acting_as(self.caller.principal, client=self.caller.client):
            return fn(self.warden)

    async def arun(self, fn: Callable[[Warden], Awaitable[T]]) -> T:
        with self.warden.acting_as(self.caller.principal, client=self.caller.client):
            return await fn(self.warden)


def _call(request: Request, caller: Annotated[ApiCaller, Depends(_caller)]) -> Call:
    return Call(request.app.state.warden, caller)


As = Annotated[Call, Depends(_call)]
"""The parameter of a /v1 handler: `def handler(a: As, ...)`, then `a.run(lambda w: ...)`."""


def v1_router(tag: str) -> APIRouter:
    """A router of /v1 routes (one resource), with the error answers every route documents."""
    return APIRouter(
        prefix="/v1",
        tags=[tag],
        redirect_slashes=False,
        responses=api_errors.error_responses(400, 401, 403, 404, 409, 413, 422, 429, 503),
    )


def route(router: APIRouter, name: str, *, summary: str, **options: Any) -> Callable[[F], F]:
    """Register a handler as the route table's `name` (its method and path come from there)."""
    r = BY_NAME[name]
    path = r.path.removeprefix("/v1")
    return router.api_route(path, methods=[r.method], name=name, summary=summary, **options)


def address(env: str, service: str, name: str) -> str:
    return f"{env}/{service}/{name}"
