"""Minting Google access tokens from a service-account key with google-auth (JWT bearer,
RFC 7523), with its errors re-worded: google-auth's messages are never shown as they are."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from ..errors import CredentialInvalid
from ..timeutil import iso
from .endpoint import Transient
from .tokens import TokenSet

_HINTS = {
    "invalid_grant": "the key was deleted or disabled in Google Cloud, or the clock is off;"
    " create a new key and `credwarden update ... --from-file`",
    "unauthorized_client": "domain-wide delegation is not granted for these scopes;"
    " an admin allows the client id in Google Workspace",
    "invalid_scope": "a scope is not a Google OAuth scope URL",
}


def mint(info: dict[str, Any], scopes: list[str], subject: str | None) -> TokenSet:
    from google.auth import exceptions as gexc
    from google.auth.transport.requests import Request
    from google.oauth2 import service_account

    creds = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
        info, scopes=scopes
    )
    if subject:
        creds = creds.with_subject(subject)
    try:
        creds.refresh(Request())
    except gexc.RefreshError as exc:
        error, description = _error_of(exc)
        raise CredentialInvalid(
            f"Google refused the service-account key: {error}"
            + (f" ({description})" if description else ""),
            hint=_HINTS.get(error, "see Google's documentation for this error"),
        ) from None
    except gexc.TransportError:
        raise Transient(
            "cannot reach Google's token endpoint",
            hint="check the network; credwarden retries with back-off",
        ) from None
    expires_at = iso(creds.expiry.replace(tzinfo=UTC)) if creds.expiry else None
    return TokenSet(str(creds.token), None, "Bearer", expires_at, " ".join(scopes), None)


def _error_of(exc: Exception) -> tuple[str, str | None]:
    """The OAuth error and description google-auth got, from its structured argument only."""
    for arg in exc.args[1:]:
        if isinstance(arg, dict):
            error = arg.get("error")
            description = arg.get("error_description")
            if isinstance(error, str):
                return error[:60], description[:200] if isinstance(description, str) else None
    return "refused", None
