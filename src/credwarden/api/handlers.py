"""The one error shape for everything the app answers, and the OpenAPI document it serves."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import CredwardenError
from . import errors as api_errors

_log = logging.getLogger("credwarden.api")


def install(app: FastAPI) -> None:
    """Exception handlers (credwarden errors, malformed requests, unknown routes and methods,
    bugs) and the OpenAPI document with the error schema."""

    @app.exception_handler(CredwardenError)
    async def on_error(request: Request, exc: CredwardenError) -> JSONResponse:
        status = api_errors.status_of(exc)
        headers = {"www-authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(exc.to_dict(), status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        bad_address = _address_error(request)
        if bad_address is not None:  # the facade's own words, as the hot path answers them
            return await on_error(request, bad_address)
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
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # RFC 9110 §15.5.6: every method the path has
            headers["Allow"] = ", ".join(_methods_of(app, request.url.path))
        return JSONResponse(
            api_errors.body(code, str(exc.detail)[:200], None, 4 if exc.status_code == 404 else 2),
            status_code=exc.status_code,
            headers=headers or None,
        )

    @app.exception_handler(Exception)
    async def on_bug(request: Request, exc: Exception) -> JSONResponse:
        _log.error("internal error: %s", type(exc).__name__)  # never its text: it may hold anything
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


def _address_error(request: Request) -> CredwardenError | None:
    """The InvalidAddress of a request whose path names a malformed credential address."""
    params = request.path_params
    if not {"env", "service", "name"} <= set(params):
        return None
    from ..address import parse_address

    try:
        parse_address(f"{params['env']}/{params['service']}/{params['name']}")
    except CredwardenError as exc:
        return exc
    return None


def _methods_of(app: FastAPI, path: str) -> list[str]:
    """The methods of every route whose path pattern matches `path` (Starlette names only
    the first route's)."""
    methods: set[str] = set()
    for r in app.router.routes:
        regex, allowed = getattr(r, "path_regex", None), getattr(r, "methods", None)
        if regex is not None and allowed and regex.match(path):
            methods |= set(allowed)
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)
