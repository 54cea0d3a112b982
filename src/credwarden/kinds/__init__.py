"""Credential kinds: one class per kind, looked up by name."""

from __future__ import annotations

from ..errors import UnknownKind
from .azure import AzureServicePrincipal
from .base import FieldSpec, Kind
from .google import GoogleServiceAccount
from .oauth import OAuth2Client, OAuth2Connection
from .simple import ApiKey, Basic, EnvSet, SecretValue

__all__ = ["FieldSpec", "Kind", "get_kind", "kind_names"]

_KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        ApiKey(),
        Basic(),
        SecretValue(),
        EnvSet(),
        OAuth2Client(),
        OAuth2Connection(),
        GoogleServiceAccount(),
        AzureServicePrincipal(),
    )
}


def get_kind(name: str) -> Kind:
    kind = _KINDS.get(name)
    if kind is None:
        raise UnknownKind(
            f"unknown kind {name[:64]!r}",
            hint=f"kinds: {', '.join(sorted(_KINDS))}",
        )
    return kind


def kind_names() -> list[str]:
    return sorted(_KINDS)
