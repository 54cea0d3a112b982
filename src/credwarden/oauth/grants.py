"""Token grants: refresh (RFC 6749 §6), client credentials (§4.4), code exchange (§4.1.3),
device code polling (RFC 8628 §3.4) and revocation (RFC 7009)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from ..errors import CredentialInvalid
from ..timeutil import utcnow
from .endpoint import (
    ClientAuth,
    OAuthError,
    Transient,
    _client_headers,
    _host,
    client_for,
    parse_response,
    post_form,
)
from .tokens import ProtocolError, TokenSet

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def refresh(values: dict[str, str], client: ClientAuth | None) -> TokenSet:
    """New tokens for a stored connection: refresh_token grant, or client credentials again."""
    with client_for() as http:
        if values.get("grant") == "client_credentials":
            return client_credentials(
                http, values["token_url"], client, values.get("requested_scope")
            )
        refresh_token = values.get("refresh_token")
        if not refresh_token:
            raise CredentialInvalid(
                "the connection has no refresh token and its access token has expired",
                hint="reconnect; for Google add access_type=offline, for OIDC the offline_access"
                " scope",
            )
        payload = post_form(
            http,
            values["token_url"],
            {"grant_type": "refresh_token", "refresh_token": refresh_token},
            client,
        )
        return TokenSet.from_response(
            payload,
            now=utcnow(),
            previous_refresh_token=refresh_token,
            requested_scope=values.get("scope"),
        )


def client_credentials(
    http: Any, token_url: str, client: ClientAuth | None, scope: str | None
) -> TokenSet:
    if client is None or not client.client_secret:
        raise CredentialInvalid("client credentials need a confidential client (with a secret)")
    data = {"grant_type": "client_credentials"}
    if scope:
        data["scope"] = scope
    payload = post_form(http, token_url, data, client)
    return TokenSet.from_response(payload, now=utcnow(), requested_scope=scope)


def exchange_code(
    http: Any,
    token_url: str,
    client: ClientAuth,
    *,
    code: str,
    redirect_uri: str,
    code_verifier: str,
    scope: str | None,
) -> TokenSet:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }
    payload = post_form(http, token_url, data, client)
    return TokenSet.from_response(payload, now=utcnow(), requested_scope=scope)


def start_device(
    http: Any, device_url: str, client: ClientAuth, scope: str | None
) -> dict[str, Any]:
    data = {"scope": scope} if scope else {}
    payload = post_form(http, device_url, data, client)
    for key in ("device_code", "user_code", "verification_uri"):
        if not isinstance(payload.get(key), str):
            raise ProtocolError(f"the device authorization response has no {key}")
    return payload


def poll_device(
    http: Any,
    token_url: str,
    client: ClientAuth,
    device: dict[str, Any],
    *,
    scope: str | None,
    sleep: Callable[[float], None] = time.sleep,
) -> TokenSet:
    """Poll until the user approves (RFC 8628 §3.5: honour interval and slow_down)."""
    interval = float(device.get("interval") or 5)
    deadline = time.monotonic() + float(device.get("expires_in") or 600)
    while time.monotonic() < deadline:
        sleep(interval)
        try:
            payload = post_form(
                http,
                token_url,
                {"grant_type": DEVICE_GRANT, "device_code": device["device_code"]},
                client,
            )
        except OAuthError as exc:
            if exc.error == "authorization_pending":
                continue
            if exc.error == "slow_down":
                interval += 5
                continue
            raise
        return TokenSet.from_response(payload, now=utcnow(), requested_scope=scope)
    raise CredentialInvalid(
        "the device code expired before it was approved",
        hint="run connect again and approve within the time shown",
    )


def revoke(revocation_url: str, client: ClientAuth | None, token: str, hint: str) -> None:
    """RFC 7009: the provider answers 200 even for tokens it no longer knows."""
    with client_for() as http:
        post_form_no_body(http, revocation_url, {"token": token, "token_type_hint": hint}, client)


def post_form_no_body(http: Any, url: str, data: dict[str, str], client: ClientAuth | None) -> None:
    """POST where success has no JSON body (revocation); errors parse as usual."""
    headers, body = _client_headers(data, client)
    try:
        response = http.post(url, data=body, headers=headers)
    except httpx.HTTPError:
        raise Transient(f"cannot reach the revocation endpoint at {_host(url)}") from None
    if response.status_code >= 400:
        parse_response(response, url)
