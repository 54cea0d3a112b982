"""OAuth kinds: `oauth2_client` (an app's id and secret) and `oauth2` (a connection's token set).

The client is its own credential, so rotating its secret updates every
connection made with it; a connection names its client by address.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from ..address import Address
from ..errors import ValidationError
from .base import FieldSpec, Kind, check_single_line, env_stem

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")
GRANTS = ("authorization_code", "client_credentials", "device_code")


class OAuth2Client(Kind):
    name = "oauth2_client"
    summary = "an OAuth app: client id and (for confidential clients) client secret"
    fields: ClassVar[tuple[FieldSpec, ...]] = (
        FieldSpec("client_id", secret=False),
        FieldSpec("client_secret", required=False, help="absent for public clients"),
        FieldSpec(
            "auth_method",
            secret=False,
            required=False,
            help="client_secret_basic (default), client_secret_post or none",
        ),
    )
    main_field = "client_secret"

    def check(self, fields: dict[str, str]) -> None:
        check_single_line("client_id", fields["client_id"])
        if "client_secret" in fields:
            check_single_line("client_secret", fields["client_secret"])
        method = fields.get("auth_method")
        if method is not None and method not in AUTH_METHODS:
            raise ValidationError(
                f"auth_method {method[:40]!r} is not supported",
                hint=f"use one of: {', '.join(AUTH_METHODS)}",
            )

    def env_vars(self, address: Address, fields: Mapping[str, str]) -> dict[str, str]:
        stem = env_stem(address)
        out = {f"{stem}_CLIENT_ID": fields["client_id"]}
        if fields.get("client_secret"):
            out[f"{stem}_CLIENT_SECRET"] = fields["client_secret"]
        return out


class OAuth2Connection(Kind):
    name = "oauth2"
    summary = "an OAuth connection: tokens kept valid by refresh"
    fields: ClassVar[tuple[FieldSpec, ...]] = (
        FieldSpec("access_token"),
        FieldSpec("refresh_token", required=False),
        FieldSpec("token_type", secret=False, required=False),
        FieldSpec("expires_at", secret=False, required=False, help="ISO time; absent: no expiry"),
        FieldSpec("scope", secret=False, required=False, help="granted scopes, space separated"),
        FieldSpec("client", secret=False, help="address of the oauth2_client it was made with"),
        FieldSpec("grant", secret=False, help=" | ".join(GRANTS)),
        FieldSpec("token_url", secret=False),
        FieldSpec("revocation_url", secret=False, required=False),
        FieldSpec("id_token_claims", secret=False, required=False, help="JSON"),
        FieldSpec("requested_scope", secret=False, required=False),
    )
    main_field = "access_token"
    refreshable = True

    def check(self, fields: dict[str, str]) -> None:
        for name in ("access_token", "refresh_token"):
            if name in fields:
                check_single_line(name, fields[name])
        if fields["grant"] not in GRANTS:
            raise ValidationError(
                f"grant {fields['grant'][:40]!r} is not supported",
                hint=f"use one of: {', '.join(GRANTS)}",
            )
        for url in ("token_url", "revocation_url"):
            value = fields.get(url)
            if value and not value.startswith(("https://", "http://127.0.0.1", "http://localhost")):
                raise ValidationError(
                    f"{url} must be an https URL",
                    hint="plain http is allowed only on loopback (127.0.0.1, localhost)",
                )

    def env_vars(self, address: Address, fields: Mapping[str, str]) -> dict[str, str]:
        return {env_stem(address, "ACCESS_TOKEN"): fields["access_token"]}

    def headers(self, fields: Mapping[str, str]) -> dict[str, str]:
        scheme = fields.get("token_type") or "Bearer"
        if scheme.lower() == "bearer":
            scheme = "Bearer"
        return {"Authorization": f"{scheme} {fields['access_token']}"}
