"""Using a credential without reading it: access tokens, auth headers and live checks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from pydantic import Field

from ...secret import Secret
from ..bodies import LiveTest, TokenRequest
from ..calls import As, Call, Seg, address, route, v1_router

router = v1_router("use")


def _token(
    a: Call,
    at: str,
    scopes: list[str],
    subject: str | None,
    min_ttl: int,
    rejected: str | None,
) -> dict[str, Any]:
    tok = a.run(
        lambda w: w.access_token(
            at,
            scopes=scopes,
            subject=subject,
            leeway=min_ttl,
            rejected=Secret(rejected) if rejected else None,
        )
    )
    return {"access_token": tok.reveal(), "token_type": "Bearer"}


@route(router, "credentials.token", summary="A valid access token, refreshed or minted (use)")
def token(
    a: As,
    env: Seg,
    service: Seg,
    name: Seg,
    scope: Annotated[list[Annotated[str, Field(max_length=500)]] | None, Query()] = None,
    subject: Annotated[str | None, Query(max_length=320)] = None,
    min_ttl: Annotated[int, Query(ge=0, le=86400)] = 60,
) -> dict[str, Any]:
    return _token(a, address(env, service, name), scope or [], subject, min_ttl, None)


@route(
    router,
    "credentials.token_rejected",
    summary="An access token; with `rejected`, refreshed unless already replaced (use)",
)
def token_post(a: As, env: Seg, service: Seg, name: Seg, body: TokenRequest) -> dict[str, Any]:
    at = address(env, service, name)
    return _token(a, at, body.scopes, body.subject, body.min_ttl, body.rejected)


@route(
    router,
    "credentials.headers",
    summary="The HTTP headers that authenticate with it (use for OAuth; read for static keys)",
)
def headers(a: As, env: Seg, service: Seg, name: Seg) -> dict[str, str]:
    found = a.run(lambda w: w.headers(address(env, service, name)))
    return {k: v.reveal() for k, v in found.items()}


@route(router, "credentials.test", summary="Live check against the provider (test)")
def live_test(a: As, env: Seg, service: Seg, name: Seg, body: LiveTest) -> dict[str, Any]:
    outcome = a.run(
        lambda w: w.test(address(env, service, name), template_vars=body.vars, timeout=body.timeout)
    )
    return dict(outcome._asdict())
