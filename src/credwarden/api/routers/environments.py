"""Environments (dev, staging, prod, ...) and which of them are protected."""

from __future__ import annotations

from ..bodies import NewEnvironment, Protection
from ..calls import As, Seg, route, v1_router

router = v1_router("environments")


@route(router, "environments.list", summary="Environments and which are protected")
def environments(a: As) -> dict[str, list[str]]:
    protected = a.run(lambda w: w.protected_environments())  # re-read: another node may add one
    return {"environments": list(a.warden.environments), "protected": protected}


@route(router, "environments.add", summary="Add an environment (admin)", status_code=201)
def add_environment(a: As, body: NewEnvironment) -> dict[str, list[str]]:
    return {"environments": a.run(lambda w: w.add_environment(body.name))}


@route(router, "environments.protect", summary="Protect or unprotect one (admin)")
def protect(a: As, env: Seg, body: Protection) -> dict[str, list[str]]:
    return {"protected": a.run(lambda w: w.protect_environment(env, body.protected))}
