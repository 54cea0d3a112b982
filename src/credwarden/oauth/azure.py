"""Minting Entra (Azure AD) tokens for a service principal with msal's client-credentials flow,
with AADSTS errors turned into plain explanations and fixes (msal returns errors as a dict)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from ..errors import CredentialInvalid
from ..kinds.azure import DEFAULT_AUTHORITY, read_certificate
from ..timeutil import iso, utcnow
from .endpoint import Transient
from .tokens import TokenSet

AADSTS: dict[str, tuple[str, str]] = {
    "7000215": ("the client secret is wrong", "copy the secret's Value (not its ID) again"),
    "7000222": (
        "the client secret has expired",
        "create a new secret under Certificates & secrets, then `credwarden update`",
    ),
    "700016": (
        "no such application in this tenant",
        "check client_id and tenant_id (the app may be registered in another tenant)",
    ),
    "90002": ("the tenant was not found", "check tenant_id"),
    "700027": (
        "the certificate assertion was refused",
        "upload this certificate to the app registration, or check its thumbprint",
    ),
    "700024": (
        "the certificate assertion is outside its validity window",
        "check the clock of this machine",
    ),
    "1002012": ("a scope is malformed", "client credentials use RESOURCE/.default scopes"),
}


def mint(values: dict[str, str], scopes: list[str]) -> TokenSet:
    import msal
    import requests

    authority = f"{(values.get('authority_host') or DEFAULT_AUTHORITY).rstrip('/')}/"
    authority += values["tenant_id"]
    if values.get("certificate"):
        thumbprint, _, key_pem = read_certificate(values["certificate"])
        credential: Any = {"private_key": key_pem, "thumbprint": thumbprint}
    else:
        credential = values["client_secret"]
    custom = not authority.startswith(DEFAULT_AUTHORITY)
    try:
        with requests.Session() as session:
            app = msal.ConfidentialClientApplication(
                values["client_id"],
                client_credential=credential,
                authority=authority,
                validate_authority=not custom,
                instance_discovery=not custom,
                http_client=session,
                token_cache=msal.TokenCache(),
            )
            result = app.acquire_token_for_client(scopes=scopes)
    except (requests.ConnectionError, requests.Timeout):
        raise Transient(
            "cannot reach the Entra token endpoint",
            hint="check the network; credwarden retries with back-off",
        ) from None
    except ValueError as exc:  # msal raises ValueError for unreachable/invalid authorities
        raise CredentialInvalid(
            f"Entra refused the authority: {type(exc).__name__}",
            hint="check tenant_id and authority_host",
        ) from None
    if "access_token" in result:
        expires_in = int(result.get("expires_in") or 3600)
        return TokenSet(
            str(result["access_token"]),
            None,
            str(result.get("token_type") or "Bearer"),
            iso(utcnow() + timedelta(seconds=expires_in)),
            " ".join(scopes),
            None,
        )
    raise _explain(result)


def _explain(result: dict[str, Any]) -> CredentialInvalid:
    error = str(result.get("error") or "refused")[:60]
    codes = [str(c) for c in result.get("error_codes") or []]
    if not codes:
        codes = re.findall(r"AADSTS(\d+)", str(result.get("error_description") or ""))
    for code in codes:
        if code in AADSTS:
            what, fix = AADSTS[code]
            return CredentialInvalid(
                f"Entra refused the service principal: {what} (AADSTS{code})", hint=fix
            )
    return CredentialInvalid(
        f"Entra refused the service principal: {error}" + (f" (AADSTS{codes[0]})" if codes else ""),
        hint="see the AADSTS code in Microsoft's error reference",
    )
