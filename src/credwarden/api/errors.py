"""One JSON shape for every error (code, message, hint, exit_code) and its HTTP status."""

from __future__ import annotations

from typing import Any

from ..errors import (
    AuditError,
    Conflict,
    CredentialInvalid,
    CredwardenError,
    CryptoError,
    LockTimeout,
    MasterKeyError,
    NotFound,
    PermissionDenied,
    RateLimited,
    StoreCorrupt,
    StoreError,
    Unauthenticated,
    UnknownEnvironment,
    UsageError,
)

_STATUS: list[tuple[type[CredwardenError], int]] = [
    (Unauthenticated, 401),
    (RateLimited, 429),
    (PermissionDenied, 403),
    (UnknownEnvironment, 404),
    (UsageError, 400),
    (NotFound, 404),
    (Conflict, 409),
    (LockTimeout, 503),
    (CredentialInvalid, 409),
    (AuditError, 503),
    (StoreCorrupt, 500),  # not worth a retry: the row stays bad until restored
    (StoreError, 503),
    (MasterKeyError, 500),
    (CryptoError, 500),
]

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["code", "message", "exit_code"],
    "properties": {
        "code": {"type": "string"},
        "message": {"type": "string"},
        "hint": {"type": ["string", "null"]},
        "exit_code": {"type": "integer"},
    },
}


def status_of(exc: CredwardenError) -> int:
    if exc.code == "provider_unavailable":  # oauth.endpoint.Transient: the provider, not us
        return 503
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def body(code: str, message: str, hint: str | None, exit_code: int) -> dict[str, Any]:
    return {"code": code, "message": message, "hint": hint, "exit_code": exit_code}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the errors a route can answer."""
    described = {
        400: "Invalid input",
        401: "Missing, unknown, expired or revoked token",
        403: "Outside the caller's grants (audited)",
        404: "Not found",
        409: "Conflict, or the credential needs re-authentication",
        413: "Request too large",
        422: "Malformed request",
        429: "Too many failed authentications",
        503: "Store, audit or lock unavailable",
    }
    content = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {s: {"description": described[s], "content": content} for s in statuses}
