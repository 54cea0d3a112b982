"""Connecting: authorization code + PKCE (RFC 6749 §4.1, RFC 7636), client credentials and the
device authorization grant (RFC 8628). Each returns a token set; storing it is the facade's."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple
from urllib.parse import urlencode

from authlib.oauth2.rfc7636 import create_s256_code_challenge

from ..errors import ValidationError
from ..providers.model import OAuth2Spec, Provider
from . import grants
from .endpoint import ClientAuth, client_for
from .loopback import CallbackServer
from .tokens import TokenSet


class Connection(NamedTuple):
    tokens: TokenSet
    grant: str
    token_url: str
    revocation_url: str | None
    requested_scope: str | None


def _spec(provider: Provider) -> OAuth2Spec:
    if provider.oauth2 is None:
        raise ValidationError(
            f"provider {provider.slug} has no OAuth 2.0 settings",
            hint="`credwarden providers show` lists what it supports",
        )
    return provider.oauth2


def _scope(spec: OAuth2Spec, scopes: Sequence[str]) -> str | None:
    value = spec.scope_string(list(scopes) if scopes else None)
    return value or None


def _urls(provider: Provider, spec: OAuth2Spec, tvars: Mapping[str, str]) -> tuple[str, str | None]:
    token_url = provider.render_url(spec.token_url, **tvars)
    revocation = provider.render_url(spec.revocation_url, **tvars) if spec.revocation_url else None
    return token_url, revocation


class AuthorizationRequest(NamedTuple):
    """The first half of the code flow: where to send the user, and what the exchange needs."""

    url: str
    state: str
    verifier: str
    redirect_uri: str
    token_url: str
    revocation_url: str | None
    scope: str | None


def _authorization_spec(provider: Provider) -> OAuth2Spec:
    spec = _spec(provider)
    if not spec.authorization_url:
        raise ValidationError(f"provider {provider.slug} has no authorization URL")
    return spec


def new_state() -> str:
    return secrets.token_urlsafe(24)


def authorization_request(
    provider: Provider,
    client: ClientAuth,
    *,
    scopes: Sequence[str],
    redirect_uri: str,
    template_vars: Mapping[str, str],
    state: str | None = None,
) -> AuthorizationRequest:
    """The authorization URL (RFC 6749 §4.1.1) with a fresh state and PKCE S256 verifier."""
    spec = _authorization_spec(provider)
    assert spec.authorization_url is not None
    token_url, revocation = _urls(provider, spec, template_vars)
    scope = _scope(spec, scopes)
    state = state or new_state()
    verifier = secrets.token_urlsafe(64)
    params: dict[str, str] = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": redirect_uri,
        "state": state,
    }
    if spec.pkce != "unsupported":
        params["code_challenge"] = create_s256_code_challenge(verifier)
        params["code_challenge_method"] = "S256"
    if scope:
        params["scope"] = scope
    params.update(spec.authorize_params)
    if "offline_access" in (scope or "").split():
        params["prompt"] = "consent"  # OpenID Connect Core §11: else offline_access is ignored
    base = provider.render_url(spec.authorization_url, **template_vars)
    url = base + ("&" if "?" in base else "?") + urlencode(params)
    return AuthorizationRequest(url, state, verifier, redirect_uri, token_url, revocation, scope)


def exchange_authorization_code(
    client: ClientAuth,
    *,
    code: str,
    redirect_uri: str,
    verifier: str,
    token_url: str,
    revocation_url: str | None,
    scope: str | None,
) -> Connection:
    """The second half of the code flow: the code (and PKCE verifier) for tokens (§4.1.3)."""
    with client_for() as http:
        tokens = grants.exchange_code(
            http,
            token_url,
            client,
            code=code,
            redirect_uri=redirect_uri,
            code_verifier=verifier,
            scope=scope,
        )
    return Connection(tokens, "authorization_code", token_url, revocation_url, scope)


def authorization_code(
    provider: Provider,
    client: ClientAuth,
    *,
    scopes: Sequence[str],
    port: int,
    open_url: Callable[[str], None],
    template_vars: Mapping[str, str],
    timeout: float = 300.0,
) -> Connection:
    """The whole code flow with a loopback listener (RFC 8252 §7.3) for the redirect."""
    _urls(provider, _authorization_spec(provider), template_vars)  # bad vars: before binding
    state = new_state()
    server = CallbackServer(port, state)
    try:
        req = authorization_request(
            provider,
            client,
            scopes=scopes,
            redirect_uri=server.redirect_uri,
            template_vars=template_vars,
            state=state,
        )
    except BaseException:
        server.server_close()
        raise
    open_url(req.url)
    query = server.wait(timeout)
    return exchange_authorization_code(
        client,
        code=query["code"],
        redirect_uri=req.redirect_uri,
        verifier=req.verifier,
        token_url=req.token_url,
        revocation_url=req.revocation_url,
        scope=req.scope,
    )


def client_credentials(
    provider: Provider,
    client: ClientAuth,
    *,
    scopes: Sequence[str],
    template_vars: Mapping[str, str],
) -> Connection:
    spec = _spec(provider)
    token_url, revocation = _urls(provider, spec, template_vars)
    scope = _scope(spec, scopes)
    with client_for() as http:
        tokens = grants.client_credentials(http, token_url, client, scope)
    return Connection(tokens, "client_credentials", token_url, revocation, scope)


def device_code(
    provider: Provider,
    client: ClientAuth,
    *,
    scopes: Sequence[str],
    template_vars: Mapping[str, str],
    show: Callable[[dict[str, Any]], None],
) -> Connection:
    spec = _spec(provider)
    if not spec.device_authorization_url:
        raise ValidationError(
            f"provider {provider.slug} has no device authorization endpoint",
            hint="use the browser flow (with --no-browser on a machine without one)",
        )
    token_url, revocation = _urls(provider, spec, template_vars)
    scope = _scope(spec, scopes)
    device_url = provider.render_url(spec.device_authorization_url, **template_vars)
    with client_for() as http:
        device = grants.start_device(http, device_url, client, scope)
        show(device)
        tokens = grants.poll_device(http, token_url, client, device, scope=scope)
    return Connection(tokens, "device_code", token_url, revocation, scope)
