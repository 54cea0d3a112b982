"""A provider entry from an OpenID Connect discovery document or RFC 8414 server metadata.

The caller fetches the document (no network code here); this module maps its
endpoints and capabilities onto the catalog schema and validates the result.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from ..errors import ValidationError
from ._validate import check_slug, check_url
from .catalog import validate_entry

_ENDPOINTS: Final = (
    ("authorization_endpoint", "authorization_url"),
    ("token_endpoint", "token_url"),
    ("revocation_endpoint", "revocation_url"),
    ("userinfo_endpoint", "userinfo_url"),
    ("device_authorization_endpoint", "device_authorization_url"),
    ("introspection_endpoint", "introspection_url"),
)
_AUTH_METHOD_PREFERENCE: Final = (
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "none",
)
_DEFAULT_SCOPES: Final = ("openid", "profile", "email", "offline_access")
_SOURCE: Final = "discovery document"


def provider_from_discovery(
    slug: str, document: Mapping[str, Any], *, name: str | None = None
) -> dict[str, Any]:
    """Turn discovery metadata into a validated catalog entry (a plain dict)."""
    check_slug(slug)
    if not isinstance(document, Mapping):
        raise ValidationError(
            f"{_SOURCE}: expected a JSON object, got {type(document).__name__}",
            hint="fetch <issuer>/.well-known/openid-configuration or oauth-authorization-server",
        )

    issuer = _url(document, "issuer")
    urls = {target: _url(document, field) for field, target in _ENDPOINTS}
    if urls["token_url"] is None:
        raise ValidationError(
            f"{_SOURCE}: token_endpoint is missing",
            hint="an OpenID Provider or RFC 8414 metadata document must name its token_endpoint;"
            " check the URL fetched",
        )

    grants = _strings(document, "grant_types_supported") or ["authorization_code", "implicit"]
    auth: list[str] = []
    if "authorization_code" in grants:
        if urls["authorization_url"] is None:
            raise ValidationError(
                f"{_SOURCE}: authorization_endpoint is missing",
                hint="it is required when the server supports the authorization_code grant",
            )
        auth.append("oauth2")
    if "client_credentials" in grants:
        auth.append("oauth2_client_credentials")
    if not auth:
        raise ValidationError(
            f"{_SOURCE}: grant_types_supported has neither authorization_code"
            " nor client_credentials",
            hint=f"supported grants: {', '.join(grants) or 'none'}",
        )

    oauth2: dict[str, Any] = {}
    if issuer is not None:
        oauth2["issuer"] = issuer
    oauth2.update({k: v for k, v in urls.items() if v is not None})

    scopes = _strings(document, "scopes_supported")
    is_oidc = "userinfo_endpoint" in document or "id_token_signing_alg_values_supported" in document
    if scopes is not None:
        default = [s for s in _DEFAULT_SCOPES if s in scopes]
        if default:
            oauth2["scopes_default"] = default
        if "offline_access" in scopes:
            oauth2["offline_scope"] = "offline_access"
            oauth2["refresh"] = {"issued": "offline"}
    elif is_oidc:
        oauth2["scopes_default"] = ["openid"]

    challenge_methods = _strings(document, "code_challenge_methods_supported")
    if challenge_methods is not None:
        oauth2["pkce"] = "supported" if "S256" in challenge_methods else "unsupported"

    methods = _strings(document, "token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    chosen = next((m for m in _AUTH_METHOD_PREFERENCE if m in methods), None)
    if chosen is None:
        raise ValidationError(
            f"{_SOURCE}: token_endpoint_auth_methods_supported has no method credwarden supports",
            hint=f"offered: {', '.join(methods)}; supported: {', '.join(_AUTH_METHOD_PREFERENCE)}",
        )
    oauth2["token_auth_method"] = chosen

    docs = (
        _url(document, "service_documentation", strict=False)
        or issuer
        or _origin(urls["token_url"])
    )
    host = urlsplit(issuer or urls["token_url"]).hostname or slug
    entry: dict[str, Any] = {
        "name": name or host,
        "auth": auth,
    }
    if is_oidc:
        entry["categories"] = ["identity"]
    entry["docs"] = docs
    entry["oauth2"] = oauth2
    if "oauth2" in auth and urls["userinfo_url"] is not None:
        entry["test"] = {
            "for": ["oauth2"],
            "method": "GET",
            "url": urls["userinfo_url"],
            "headers": {"Authorization": "Bearer {access_token}"},
            "expect_status": 200,
        }
    validate_entry(slug, entry, source=_SOURCE)
    return entry


def _url(document: Mapping[str, Any], field: str, *, strict: bool = True) -> str | None:
    """The endpoint URL in `field`, checked; None when absent (or, not strict, unusable)."""
    value: object = document.get(field)
    if value is None:
        return None
    problem: str | None
    if not isinstance(value, str):
        problem = f"is not a string ({type(value).__name__})"
    elif "{" in value or "}" in value:
        problem = "must not contain '{' or '}'"
    else:
        problem = check_url(value)
        if problem is None:
            return value
    if not strict:
        return None
    shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:79] + "…"
    raise ValidationError(
        f"{_SOURCE}: {field} {shown} {problem}",
        hint="endpoints must be https URLs (plain http only for localhost, 127.0.0.1 or [::1])",
    )


def _strings(document: Mapping[str, Any], field: str) -> list[str] | None:
    """A list-of-strings member; None when absent (the caller applies the RFC default)."""
    value: object = document.get(field)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(
            f"{_SOURCE}: {field} must be a list of strings", hint="check the document fetched"
        )
    return [str(v) for v in value]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/"
