"""Who may do what: the caller itself, principals, their API tokens, and grants."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query

from ..bodies import GrantRevocation, NewGrant, NewPrincipal, NewToken
from ..calls import SEG, As, route, v1_router

router = v1_router("access")

Name = Annotated[str, Path(pattern=SEG, max_length=64, description="a principal's name")]
TokenId = Annotated[str, Path(pattern=r"^[0-9a-f]{12}$", description="an API token's id")]
PrincipalFilter = Annotated[str | None, Query(pattern=SEG, max_length=64)]


@route(router, "whoami", summary="The authenticated principal")
def whoami(a: As) -> dict[str, Any]:
    p = a.caller.principal
    return {"name": p.name, "type": p.type, "token": a.caller.client["token"]}


@route(router, "principals.list", summary="Principals (admin)")
def principals(a: As) -> list[dict[str, Any]]:
    return [p.to_dict() for p in a.run(lambda w: w.principals())]


@route(router, "principals.add", summary="Add a principal (admin)", status_code=201)
def add_principal(a: As, body: NewPrincipal) -> dict[str, Any]:
    fields = body.model_dump(exclude={"name"})
    return dict(a.run(lambda w: w.add_principal(body.name, **fields)).to_dict())


@route(router, "principals.show", summary="A principal with its grants and tokens (admin)")
def principal(a: As, name: Name) -> dict[str, Any]:
    return dict(a.run(lambda w: w.principal_info(name)))


@route(router, "principals.remove", summary="Remove a principal, its grants and tokens (admin)")
def remove_principal(a: As, name: Name) -> dict[str, int]:
    return dict(a.run(lambda w: w.remove_principal(name)))


@route(
    router,
    "tokens.issue",
    summary="A new API token (shown once; stored hashed) (admin)",
    status_code=201,
)
def issue_token(a: As, name: Name, body: NewToken) -> dict[str, Any]:
    rec, tok = a.run(
        lambda w: w.issue_token(name, expires_in=body.expires_in, description=body.description)
    )
    return {**rec, "token": tok.reveal()}


@route(router, "tokens.list", summary="API tokens, without their secrets (admin)")
def tokens(a: As, principal: PrincipalFilter = None) -> list[dict[str, Any]]:
    return list(a.run(lambda w: w.tokens(principal)))


@route(router, "tokens.revoke", summary="Revoke an API token (admin)")
def revoke_token(a: As, token_id: TokenId) -> dict[str, Any]:
    return dict(a.run(lambda w: w.revoke_token(token_id)))


@route(router, "grants.list", summary="Grants (admin)")
def grants(a: As, principal: PrincipalFilter = None) -> list[dict[str, Any]]:
    return [g.to_dict() for g in a.run(lambda w: w.grants(principal))]


@route(
    router, "grants.add", summary="Grant actions or a role on a pattern (admin)", status_code=201
)
def grant(a: As, body: NewGrant) -> dict[str, Any]:
    g = a.run(lambda w: w.grant(body.principal, body.pattern, actions=body.actions, role=body.role))
    return dict(g.to_dict())


@route(router, "grants.revoke", summary="Revoke actions of a grant, or all of it (admin)")
def revoke_grant(a: As, body: GrantRevocation) -> dict[str, Any]:
    actions = ",".join(body.actions) if body.actions else None
    left = a.run(lambda w: w.revoke_grant(body.principal, body.pattern, actions=actions))
    return {"left": left.to_dict() if left else None}
