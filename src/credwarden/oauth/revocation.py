"""Revoking an OAuth connection's grant at its provider when it is removed: the provider's own
revocation request when its catalog entry has one (GitHub, Slack, HubSpot, Notion, ...), else
RFC 7009 at the connection's revocation URL. The removal's audit event records the outcome."""

from __future__ import annotations

from typing import Any

from ..errors import CredwardenError
from ..providers.model import HttpRequest, Provider
from ..records import Records
from .ops import client_auth

TIMEOUT_S = 10.0


def revoke_connection(records: Records, addr: str, home: str) -> str | None:
    """ "revoked", an error code, or None when there is nothing to revoke."""
    with records.store.transaction(write=False) as tx:
        cred = records.find(tx, addr)
        if cred is None or cred.kind != "oauth2":
            return None
        ver = records.load_version(tx, cred)
        values = records.values(tx, cred, ver)
        try:
            client = client_auth(records, tx, values.get("client", ""))
        except CredwardenError as exc:
            return f"client_{exc.code}"
    provider = _provider(home, cred.provider)
    if provider is not None and provider.revoke is not None:
        secrets: dict[str, str] = dict(values)
        if client is not None:
            secrets["client_id"] = client.client_id
            if client.client_secret:
                secrets["client_secret"] = client.client_secret
        try:
            request = provider.revoke_request("oauth2", secrets=secrets, **dict(cred.tags))
        except CredwardenError as exc:
            return exc.code
        if request is not None:
            return _send(request)
    url = ver.plain.get("revocation_url")
    if not url:
        return None
    from .grants import revoke

    hint = "refresh_token" if values.get("refresh_token") else "access_token"
    try:
        revoke(url, client, values[hint], hint)
    except CredwardenError as exc:
        return exc.code
    return "revoked"


def _provider(home: str, slug: str | None) -> Provider | None:
    if not slug:
        return None
    from ..providers import load_catalog

    try:
        return load_catalog(home).get(slug)
    except CredwardenError:
        return None  # gone from the catalog since: RFC 7009 if the connection has a URL


def _send(request: HttpRequest) -> str:
    """Send the provider's revocation request: "revoked", or why not (never its answer's
    text: it may quote the token)."""
    import json

    import httpx

    try:
        with httpx.Client(timeout=TIMEOUT_S, follow_redirects=False) as http:
            response = http.request(
                request.method,
                request.url,
                headers=request.headers,
                content=request.body.encode() if request.body is not None else None,
            )
    except httpx.HTTPError:
        return "provider_unavailable"
    payload: Any = None
    if request.expect_json:
        try:
            payload = json.loads(response.content[: 1 << 20])
        except ValueError:
            payload = None
    if request.succeeded(response.status_code, payload):
        return "revoked"
    return f"revocation_http_{response.status_code}"
