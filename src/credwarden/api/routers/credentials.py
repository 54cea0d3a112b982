"""Credentials: what is stored, its values and versions, imports and environment variables."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from fastapi.responses import JSONResponse
from pydantic import Field

from ...errors import ValidationError
from ..bodies import (
    CHANGE_METADATA,
    CLEARABLE,
    HEALTH,
    KIND,
    CredentialChange,
    ImportRequest,
    NewCredential,
    QuerySeg,
    Rollback,
)
from ..calls import FIELD, SEG, As, Seg, address, route, v1_router

router = v1_router("credentials")


@route(router, "credentials.list", summary="Credentials the caller may describe")
def list_credentials(
    a: As,
    env: QuerySeg = None,
    service: QuerySeg = None,
    kind: Annotated[str | None, Query(pattern=KIND)] = None,
    health: Annotated[str | None, Query(pattern=HEALTH)] = None,
) -> list[dict[str, Any]]:
    infos = a.run(lambda w: w.list(env=env, service=service, kind=kind, health=health))
    return [i.to_dict() for i in infos]


@route(router, "credentials.add", summary="Add a credential (write)", status_code=201)
def add_credential(a: As, body: NewCredential) -> dict[str, Any]:
    meta = body.model_dump(exclude={"address", "kind", "fields"})
    return dict(a.run(lambda w: w.add(body.address, body.kind, body.fields, **meta)).to_dict())


@route(router, "credentials.describe", summary="Metadata and health; ?versions=true adds them")
def describe(a: As, env: Seg, service: Seg, name: Seg, versions: bool = False) -> dict[str, Any]:
    at = address(env, service, name)
    if not versions:
        return dict(a.run(lambda w: w.describe(at)).to_dict())
    info, found = a.run(lambda w: w.show(at))  # one operation, one event
    return {**info.to_dict(), "versions": [v.to_dict() for v in found]}


@route(router, "credentials.update", summary="Change fields or metadata (write)")
def update(a: As, env: Seg, service: Seg, name: Seg, body: CredentialChange) -> dict[str, Any]:
    meta: dict[str, Any] = {k: v for k in CHANGE_METADATA if (v := getattr(body, k)) is not None}
    for k in body.clear:
        if k not in CLEARABLE:
            raise ValidationError(
                f"cannot clear {k[:32]!r}", hint=f"clearable: {', '.join(CLEARABLE)}"
            )
        meta[k] = None
    info = a.run(
        lambda w: w.update(
            address(env, service, name),
            fields=body.fields,
            unset=body.unset,
            main=body.main,
            expected_version=body.expected_version,
            note=body.note,
            **meta,
        )
    )
    return dict(info.to_dict())


@route(router, "credentials.remove", summary="Remove (write; revokes an OAuth grant)")
def remove(
    a: As,
    env: Seg,
    service: Seg,
    name: Seg,
    expected_version: Annotated[int | None, Query(ge=1)] = None,
    revoke: bool = True,
) -> dict[str, Any]:
    at = address(env, service, name)
    revoked = a.run(lambda w: w.remove(at, expected_version=expected_version, revoke=revoke))
    return {"removed": at, "revocation": revoked}


@route(router, "credentials.value", summary="The fields' values (read; audited first)")
async def value(
    a: As,
    env: Seg,
    service: Seg,
    name: Seg,
    field: Annotated[
        str | None, Query(pattern=FIELD, max_length=128, description="only this field")
    ] = None,
    main: Annotated[bool, Query(description="only the kind's main field")] = False,
) -> dict[str, str]:
    at = address(env, service, name)
    if field is not None or main:
        ref = f"{at}#{field}" if field is not None else at
        picked, found = await a.arun(lambda w: w.aget_field(ref))
        return {picked: found}
    version, values = await a.arun(lambda w: w.aread_values(at))
    return JSONResponse(  # type: ignore[return-value]
        values, headers={"x-credwarden-version": str(version)}
    )


@route(router, "credentials.history", summary="Versions, newest first (describe)")
def history(a: As, env: Seg, service: Seg, name: Seg) -> list[dict[str, Any]]:
    return [v.to_dict() for v in a.run(lambda w: w.history(address(env, service, name)))]


@route(router, "credentials.rollback", summary="Make an old version current again (write)")
def rollback(a: As, env: Seg, service: Seg, name: Seg, body: Rollback) -> dict[str, Any]:
    info = a.run(
        lambda w: w.rollback(
            address(env, service, name), body.to_version, expected_version=body.expected_version
        )
    )
    return dict(info.to_dict())


@route(router, "import", summary="Import variables as secrets, all or nothing (write)")
def import_entries(a: As, body: ImportRequest) -> list[dict[str, Any]]:
    infos = a.run(
        lambda w: w.import_entries(
            body.entries, env=body.env, service=body.service, overwrite=body.overwrite
        )
    )
    return [i.to_dict() for i in infos]


@route(router, "env_vars", summary="Environment variables of readable credentials (read)")
def env_vars(
    a: As,
    env: Annotated[str, Query(pattern=SEG, max_length=64)],
    only: Annotated[list[Annotated[str, Field(max_length=200)]] | None, Query()] = None,
) -> dict[str, str]:
    out = a.run(lambda w: w.env_vars(env=env, only=only or ()))
    return {k: v.reveal() for k, v in out.items()}
