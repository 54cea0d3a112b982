"""`Warden.connect`: run a flow with a client credential, then store (or repair) the connection.

Nothing is stored until the provider has issued tokens: a denied, mismatched or
failed flow leaves no half-made connection. Connecting again to an existing
address writes a new version in place (health restored), so workflows that use
the address keep working.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..address import parse_address
from ..errors import AlreadyExists, ValidationError
from ..kinds import get_kind
from ..model import NS_CRED, NS_VERSION, CredentialInfo, CredentialRecord, version_key
from ..timeutil import iso, utcnow
from .endpoint import ClientAuth
from .flows import Connection, authorization_code, client_credentials, device_code

if TYPE_CHECKING:
    from ..store import Tx
    from ..warden import Warden, _Op

GRANTS = ("authorization_code", "client_credentials", "device_code")
_TAG_KEY = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}\Z")


def connect(
    w: Warden,
    address: str,
    *,
    provider: str,
    client: str,
    scopes: Sequence[str],
    grant: str,
    port: int,
    open_url: Callable[[str], None] | None,
    show_device: Callable[[dict[str, Any]], None] | None,
    template_vars: dict[str, str],
    timeout: float,
) -> CredentialInfo:
    from ..providers import load_catalog

    a = parse_address(address)
    addr = str(a)
    client_addr = str(parse_address(client))
    if grant not in GRANTS:
        raise ValidationError(
            f"unknown grant {grant[:40]!r}", hint=f"use one of: {', '.join(GRANTS)}"
        )
    w._check_env(a)
    prov = load_catalog(w.settings.home).get(provider)
    w._authorize("write", addr)
    auth = _client(w, client_addr, prov.oauth2.token_auth_method if prov.oauth2 else None)
    if grant == "client_credentials":
        conn = client_credentials(prov, auth, scopes=scopes, template_vars=template_vars)
    elif grant == "device_code":
        conn = device_code(
            prov,
            auth,
            scopes=scopes,
            template_vars=template_vars,
            show=show_device or (lambda d: None),
        )
    else:
        conn = authorization_code(
            prov,
            auth,
            scopes=scopes,
            port=port,
            open_url=open_url or _print_url,
            template_vars=template_vars,
            timeout=timeout,
        )
    return _store(w, addr, prov.slug, client_addr, conn, template_vars)


def _print_url(url: str) -> None:
    print(url, flush=True)


def _client(w: Warden, client_addr: str, default_method: str | None) -> ClientAuth:
    """The client's id and secret: reading them is a `use` of the client credential."""

    def work(tx: Tx, op: _Op) -> ClientAuth:
        cred = w._load(tx, client_addr)
        if cred.kind != "oauth2_client":
            raise ValidationError(
                f"{client_addr} is a {cred.kind} credential, not an oauth2_client",
                hint=f"add the app with: credwarden add {client_addr} --kind oauth2_client"
                " --field client_id=...",
            )
        ver = w._load_version(tx, cred)
        values = w._values(tx, cred, ver)
        op.version = cred.version
        op.detail = {"for": "connect"}
        secret = values.get("client_secret")
        method = (
            values.get("auth_method")
            or (default_method if default_method and secret else None)
            or ("client_secret_basic" if secret else "none")
        )
        if method == "private_key_jwt":
            method = "client_secret_basic"
        return ClientAuth(values["client_id"], secret, method)

    result: ClientAuth = w._op("use", client_addr, work)
    return result


def _store(
    w: Warden,
    addr: str,
    provider: str,
    client_addr: str,
    conn: Connection,
    template_vars: dict[str, str],
) -> CredentialInfo:
    """Store the token set; the template vars (shop, tenant, ...) become tags, so `test` and
    later reconnects know them."""
    tags = {k: v for k, v in template_vars.items() if _TAG_KEY.match(k) and len(v) <= 256}
    kind = get_kind("oauth2")
    values = conn.tokens.fields()
    values.update(client=client_addr, grant=conn.grant, token_url=conn.token_url)
    if conn.revocation_url:
        values["revocation_url"] = conn.revocation_url
    if conn.requested_scope:
        values["requested_scope"] = conn.requested_scope
    values = kind.validate(values)

    def work(tx: Tx, op: _Op) -> CredentialInfo:
        now = iso(utcnow())
        rec = tx.get(NS_CRED, addr)
        if rec is None:
            cred = CredentialRecord.new(addr, kind.name, now, provider=provider, tags=tags)
            ver = w._seal(tx, cred.id, 1, kind, values, "connected")
            try:
                tx.put(NS_CRED, addr, cred.to_bytes(), rev=0)
            except AlreadyExists:
                raise AlreadyExists(f"{addr} was created by someone else meanwhile") from None
            tx.put(NS_VERSION, version_key(cred.id, 1), ver.to_bytes(), rev=0)
            op.detail = {"connected": True, "provider": provider, "grant": conn.grant}
        else:
            cred = CredentialRecord.from_bytes(rec.body, rec.rev)
            if cred.kind != kind.name:
                raise ValidationError(
                    f"{addr} is a {cred.kind} credential; connect makes oauth2 connections",
                    hint="choose another address, or remove this one first",
                )
            cred = cred._replace(
                tags={**cred.tags, **tags},
                version=cred.version + 1,
                updated_at=now,
                rotated_at=now,
                provider=provider,
                health_override=None,
            )
            ver = w._seal(tx, cred.id, cred.version, kind, values, "reconnected")
            w._put_version(tx, cred, ver)
            w._put_cred(tx, cred)
            op.detail = {"repaired": True, "provider": provider, "grant": conn.grant}
        op.version = cred.version
        return w._info(cred, ver, None)

    info: CredentialInfo = w._op("write", addr, work)
    return info
