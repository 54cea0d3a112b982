"""The token set a connection keeps (RFC 6749 §5.1), built from a token response."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from ..errors import CredwardenError
from ..timeutil import iso, parse_iso

DEFAULT_LEEWAY_S = 60


class ProtocolError(CredwardenError):
    """The provider answered something that is not a valid OAuth response."""

    code = "oauth_protocol"


class TokenSet(NamedTuple):
    access_token: str
    refresh_token: str | None
    token_type: str
    expires_at: str | None
    scope: str | None
    id_token_claims: str | None

    def __repr__(self) -> str:
        return f"TokenSet(expires_at={self.expires_at!r}, scope={self.scope!r}, <tokens hidden>)"

    @classmethod
    def from_response(
        cls,
        payload: dict[str, Any],
        *,
        now: datetime,
        previous_refresh_token: str | None = None,
        requested_scope: str | None = None,
        default_ttl: int | None = None,
    ) -> TokenSet:
        """Validate a token response; keep the old refresh token when none is returned."""
        token = payload.get("access_token")
        if not isinstance(token, str) or not token:
            raise ProtocolError(
                "the token response has no access_token",
                hint="the provider's token endpoint answered 200 without a token; check its docs",
            )
        expires_in = payload.get("expires_in")
        if isinstance(expires_in, str) and expires_in.isdigit():
            expires_in = int(expires_in)
        if expires_in is not None and (not isinstance(expires_in, int) or expires_in < 0):
            raise ProtocolError("the token response has an invalid expires_in")
        ttl = expires_in if expires_in is not None else default_ttl
        expires_at = iso(now + timedelta(seconds=ttl)) if ttl is not None else None
        refresh = payload.get("refresh_token")
        if refresh is not None and not isinstance(refresh, str):
            raise ProtocolError("the token response has an invalid refresh_token")
        scope = payload.get("scope")
        if isinstance(scope, list):  # a few providers send a JSON list
            scope = " ".join(str(s) for s in scope)
        claims = _id_token_claims(payload.get("id_token"))
        return cls(
            access_token=token,
            refresh_token=refresh or previous_refresh_token,
            token_type=str(payload.get("token_type") or "Bearer"),
            expires_at=expires_at,
            scope=scope if isinstance(scope, str) else requested_scope,
            id_token_claims=claims,
        )

    def fields(self) -> dict[str, str]:
        """The oauth2 kind's token fields (connection fields like client are added by callers)."""
        out = {"access_token": self.access_token, "token_type": self.token_type}
        for name in ("refresh_token", "expires_at", "scope", "id_token_claims"):
            value = getattr(self, name)
            if value:
                out[name] = value
        return out


def is_fresh(expires_at: str | None, now: datetime, leeway: int = DEFAULT_LEEWAY_S) -> bool:
    """Whether a token with this expiry is usable for at least `leeway` more seconds."""
    if not expires_at:
        return True  # the provider said nothing: valid until a 401 says otherwise
    return parse_iso(expires_at) - now > timedelta(seconds=leeway)


def _id_token_claims(id_token: object) -> str | None:
    """The ID token's payload, as information only (not verified, never used to decide)."""
    if not isinstance(id_token, str) or id_token.count(".") != 2:
        return None
    part = id_token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except ValueError:
        return None
    if not isinstance(claims, dict):
        return None
    keep = ("iss", "sub", "aud", "email", "name", "preferred_username", "tid", "exp", "iat")
    return json.dumps({k: claims[k] for k in keep if k in claims}, sort_keys=True)
