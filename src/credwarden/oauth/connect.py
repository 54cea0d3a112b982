"""`Warden.connect`: run a flow with a client credential, then store (or repair) the connection.

Nothing is stored until the provider has issued tokens: a denied, mismatched or
failed flow leaves no half-made connection. Connecting again to an existing
address writes a new version in place (health restored), so workflows that use
the address keep working.

Through a server (`connect_start` / `connect_finish` / `connect_status`) the redirect
comes to the server's public URL instead of a loopback listener: the pending flow
(state hashed, PKCE verifier sealed) waits in the store for ten minutes, is used once,
and is finished as the principal who started it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..address import parse_address
from ..errors import (
    AlreadyExists,
    AuditError,
    Conflict,
    CredentialInvalid,
    CredwardenError,
    StoreCorrupt,
    StoreError,
    UsageError,
    ValidationError,
)
from ..interrupts import held
from ..kinds import get_kind
from ..lifecycle.health import credential_info
from ..model import NS_CRED, CredentialInfo, CredentialRecord, dumps
from ..operation import Op, Principal, Services
from ..store import Record, Tx, rows
from ..store.rows import STR, TIME, map_of
from ..timeutil import iso, parse_iso, utcnow
from .endpoint import ClientAuth
from .flows import (
    Connection,
    authorization_code,
    authorization_request,
    client_credentials,
    device_code,
    exchange_authorization_code,
)

if TYPE_CHECKING:
    from ..providers.model import Provider

GRANTS = ("authorization_code", "client_credentials", "device_code")
_TAG_KEY = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}\Z")

NS_PENDING = "oauth_pending"
"""Flows begun by `connect_start`, by sha256(state) hex: used once by `connect_finish`."""
NS_DONE = "oauth_done"
"""The outcome of a finished flow (same key), kept for `connect_status` pollers."""
FLOW_TTL = timedelta(minutes=10)
DONE_TTL = timedelta(minutes=10)
_FLOW_RE = re.compile(r"[0-9a-f]{64}\Z")
_ERROR_CODE = re.compile(r"[a-z_]{1,40}\Z")
MAX_STATE = 512

PENDING_SHAPE = rows.Shape(
    "pending connect flow",
    {"address": STR, "principal": STR, "expires_at": TIME, "sealed": map_of(STR)},
    open=True,
)
DONE_SHAPE = rows.Shape(
    "connect outcome",
    {"status": STR, "address": STR, "principal": STR, "message": STR, "expires_at": TIME},
)


def _flow_record(rec: Record, ns: str) -> dict[str, Any]:
    return (PENDING_SHAPE if ns == NS_PENDING else DONE_SHAPE).decode(
        rec.body, rows.record_name(ns, rec.key)
    )


def connect(
    s: Services,
    home: str,
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
    s.records.check_env(a.env)
    prov = load_catalog(home).get(provider)
    s.ops.authorize("write", addr)
    auth = _client(s, client_addr, prov.oauth2.token_auth_method if prov.oauth2 else None)
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
    with held():  # a Ctrl-C from here on waits: the connection is stored and said so
        return _store(s, addr, prov.slug, client_addr, conn, template_vars)


def _check_template_vars(prov: Provider, template_vars: Mapping[str, str]) -> None:
    known = [v.name for v in prov.template_vars]
    unknown = sorted(set(template_vars) - set(known))
    if unknown:
        raise ValidationError(
            f"provider {prov.slug} has no template var {', '.join(u[:40] for u in unknown[:5])}",
            hint=f"its template vars: {', '.join(known) or 'none'}",
        )


def _check_redirect_uri(uri: str) -> str:
    try:
        parts = urlsplit(uri)
        ok = (
            len(uri) <= 2000
            and parts.scheme in ("http", "https")
            and bool(parts.hostname)
            and parts.username is None
            and parts.password is None
            and not parts.fragment
        )
    except ValueError:
        ok = False
    if not ok:
        raise ValidationError(
            "the redirect URI must be an http(s) URL without user info or fragment",
            hint="e.g. https://credwarden.example.com/oauth/callback (serve --public-url)",
        )
    return uri


def flow_key(state: str) -> str:
    """Where a pending flow is kept: sha256(state) hex. The state itself is never stored."""
    return hashlib.sha256(state.encode()).hexdigest()


def _aad(key: str) -> str:
    return f"{NS_PENDING}|{key}"


def connect_start(
    s: Services,
    home: str,
    address: str,
    *,
    provider: str,
    client: str,
    scopes: Sequence[str],
    redirect_uri: str,
    template_vars: dict[str, str],
) -> dict[str, Any]:
    """Build the authorization URL (state, PKCE S256) and keep the pending flow, the verifier
    sealed, for `connect_finish`; audited as `connect.start` (needs `write` on the address)."""
    from ..providers import load_catalog

    a = parse_address(address)
    addr = str(a)
    client_addr = str(parse_address(client))
    _check_redirect_uri(redirect_uri)
    s.records.check_env(a.env)
    prov = load_catalog(home).get(provider)
    _check_template_vars(prov, template_vars)
    s.ops.authorize("write", addr, audit_as="connect.start")
    method = prov.oauth2.token_auth_method if prov.oauth2 else None
    auth = _client(s, client_addr, method)
    req = authorization_request(
        prov, auth, scopes=scopes, redirect_uri=redirect_uri, template_vars=template_vars
    )
    key = flow_key(req.state)
    now = utcnow()
    expires_at = iso(now + FLOW_TTL)
    who = s.ops.principal
    flow = {
        "address": addr,
        "provider": prov.slug,
        "client": client_addr,
        "scopes": list(scopes),
        "redirect_uri": redirect_uri,
        "template_vars": dict(template_vars),
        "principal": who.name,
        "created_at": iso(now),
        "expires_at": expires_at,
    }
    # What finishing relies on is sealed (and so authenticated): the verifier, who started
    # it, and where the tokens go. The plain copy is for status and inspection.
    sealed = {
        **flow,
        "verifier": req.verifier,
        "principal_type": who.type,
        "principal_root": who.root,
        "token_url": req.token_url,
        "revocation_url": req.revocation_url,
        "scope": req.scope,
        "token_auth_method": method,
    }

    def work(tx: Tx, op: Op) -> None:
        _sweep(tx, now)
        body = {**flow, "sealed": s.records.barrier.seal_blob(tx, _aad(key), dumps(sealed))}
        tx.put(NS_PENDING, key, dumps(body), rev=0)
        op.detail = {
            "flow": key[:16],
            "provider": prov.slug,
            "client": client_addr,
            "redirect_uri": redirect_uri,
        }

    s.ops.run("connect.start", addr, work, needs="write")
    return {
        "authorize_url": req.url,
        "flow": key,
        "expires_at": expires_at,
        "redirect_uri": redirect_uri,
    }


def _sweep(tx: Tx, now: datetime) -> None:
    """Forget outcomes past their time, and pending flows expired for as long again."""
    for ns, grace in ((NS_DONE, timedelta(0)), (NS_PENDING, DONE_TTL)):
        for rec in tx.list(ns):
            try:
                expires = parse_iso(_flow_record(rec, ns)["expires_at"])
            except StoreCorrupt:
                expires = now - grace  # unreadable: drop
            if expires + grace <= now:
                tx.delete(ns, rec.key, rev=rec.rev)


def _put_marker(tx: Tx, key: str, status: str, address: str, principal: str, message: str) -> None:
    body = {
        "status": status,
        "address": address,
        "principal": principal,
        "message": message,
        "expires_at": iso(utcnow() + DONE_TTL),
    }
    old = tx.get(NS_DONE, key)
    tx.put(NS_DONE, key, dumps(body), rev=old.rev if old else 0)


def _conclude(
    s: Services,
    key: str,
    status: str,
    address: str,
    message: str,
    result: str,
    detail: dict[str, Any],
) -> None:
    """Record the outcome for pollers and audit `connect.finish`, in one transaction."""
    op = Op(detail={"flow": key[:16], **detail})
    try:
        with s.records.store.transaction() as tx:
            _put_marker(tx, key, status, address, s.ops.principal.name, message)
            s.ops.audit(tx, [("connect.finish", address, result, op)])
    except StoreError as exc:
        raise AuditError(
            f"the audit event could not be written ({exc.message})",
            hint="check the database is writable and has space",
        ) from None


def connect_finish(
    s: Services, state: str, query: dict[str, str], *, client: dict[str, Any] | None = None
) -> CredentialInfo:
    """Finish a flow from its redirect: once (the pending record is deleted first), within its
    ten minutes, as the principal who started it (grants checked again), audited."""
    if not state or len(state) > MAX_STATE:
        raise UsageError(
            "the redirect carried no valid state", hint="start connect again from the start"
        )
    key = flow_key(state)
    now = utcnow()

    def consume(tx: Tx) -> tuple[dict[str, Any], bool] | None:
        rec = tx.get(NS_PENDING, key)
        if rec is None:
            return None
        tx.delete(NS_PENDING, key, rev=rec.rev)  # single use, whatever happens next
        body = _flow_record(rec, NS_PENDING)
        where = rows.record_name(NS_PENDING, key)
        flow = rows.document(s.records.barrier.open_blob(tx, body["sealed"], _aad(key)), where)
        expired = parse_iso(flow["expires_at"]) <= now
        status = "expired" if expired else "finishing"
        message = "the flow expired before the authorization arrived" if expired else ""
        _put_marker(tx, key, status, flow["address"], flow["principal"], message)
        return flow, expired

    try:
        with s.records.store.transaction() as tx:
            consumed = consume(tx)
            used = consumed is None and tx.get(NS_DONE, key) is not None
    except Conflict:
        consumed, used = None, True  # another request consumed it meanwhile
    if consumed is None:
        if used:
            raise UsageError(
                "this authorization response was already used",
                hint="each connect can be finished once; start connect again if needed",
            )
        raise UsageError(
            "this authorization response does not belong to a pending connect"
            " (unknown or expired state)",
            hint="start connect again, and approve within 10 minutes",
        )
    flow, expired = consumed
    addr = str(flow["address"])
    principal = Principal(
        str(flow["principal"]), str(flow["principal_type"]), bool(flow["principal_root"])
    )
    with s.ops.acting_as(principal, source="api", client=client):
        if expired:
            _conclude(s, key, "expired", addr, "expired", "error", {"error": "expired"})
            raise CredentialInvalid(
                "the connect flow expired before the authorization arrived",
                hint="start connect again and approve within 10 minutes",
            )
        if "error" in query:
            raw = query.get("error") or ""
            error = raw if _ERROR_CODE.match(raw) else "error"
            message = f"the provider did not authorize: {error}"
            _conclude(s, key, "failed", addr, message, "denied", {"error": error})
            raise CredentialInvalid(
                message, hint="access_denied means the user (or an admin policy) declined"
            )
        try:
            code = query.get("code")
            if not code:
                raise CredentialInvalid("the redirect carried no authorization code")
            auth = _client(s, str(flow["client"]), flow.get("token_auth_method"))
            conn = exchange_authorization_code(
                auth,
                code=code,
                redirect_uri=str(flow["redirect_uri"]),
                verifier=str(flow["verifier"]),
                token_url=str(flow["token_url"]),
                revocation_url=flow.get("revocation_url"),
                scope=flow.get("scope"),
            )
            info = _store(
                s, addr, str(flow["provider"]), str(flow["client"]), conn, flow["template_vars"]
            )
        except CredwardenError as exc:
            _conclude(s, key, "failed", addr, exc.message, "error", {"error": exc.code})
            raise
        except Exception:  # a bug: the flow still ends (never its text: it may hold anything)
            _conclude(s, key, "failed", addr, "internal error", "error", {"error": "internal"})
            raise
        _conclude(s, key, "done", addr, "", "ok", {"version": info.version})
        return info


def connect_status(s: Services, flow: str) -> dict[str, Any]:
    """Where a flow stands, for the principal who started it or who may describe its address
    ("unknown" to anyone else). Not audited: the CLI polls it twice a second."""
    if not _FLOW_RE.match(flow):
        return {"status": "unknown"}
    now = utcnow()
    with s.records.store.transaction(write=False) as tx:
        pending = tx.get(NS_PENDING, flow)
        done = tx.get(NS_DONE, flow)
        if pending is not None:
            body: dict[str, Any] | None = _flow_record(pending, NS_PENDING)
        else:
            body = _flow_record(done, NS_DONE) if done is not None else None
        exists = body is not None and tx.get(NS_CRED, str(body.get("address"))) is not None
    if body is None or not _visible(s, body):
        return {"status": "unknown"}
    expired = parse_iso(body["expires_at"]) <= now
    out: dict[str, Any] = {"address": body["address"]}
    if pending is not None:
        out["status"] = "expired" if expired else "pending"
        out["expires_at"] = body["expires_at"]
        return out
    if expired:
        return {"status": "unknown"}
    status = {"finishing": "pending"}.get(body["status"], body["status"])
    if status == "done" and not exists:
        status = "unknown"  # removed since
    out["status"] = status
    if status in ("failed", "expired"):
        out["message"] = body.get("message") or status
    return out


def _visible(s: Services, body: Mapping[str, Any]) -> bool:
    address = body.get("address")
    return body.get("principal") == s.ops.principal.name or (
        isinstance(address, str) and s.ops.allowed("describe", address)
    )


def _print_url(url: str) -> None:
    print(url, flush=True)


def _client(s: Services, client_addr: str, default_method: str | None) -> ClientAuth:
    """The client's id and secret: reading them is a `use` of the client credential."""

    def work(tx: Tx, op: Op) -> ClientAuth:
        cred = s.records.load(tx, client_addr)
        if cred.kind != "oauth2_client":
            raise ValidationError(
                f"{client_addr} is a {cred.kind} credential, not an oauth2_client",
                hint=f"add the app with: credwarden add {client_addr} --kind oauth2_client"
                " --field client_id=...",
            )
        ver = s.records.load_version(tx, cred)
        values = s.records.values(tx, cred, ver)
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

    result: ClientAuth = s.ops.run("use", client_addr, work)
    return result


def _store(
    s: Services,
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

    def work(tx: Tx, op: Op) -> CredentialInfo:
        now = iso(utcnow())
        by = s.ops.principal.name
        cred = s.records.find(tx, addr)
        if cred is None:
            cred = CredentialRecord.new(addr, kind.name, now, provider=provider, tags=tags)
            ver = s.records.seal(tx, cred.id, 1, kind, values, "connected", by=by)
            try:
                cred = s.records.create(tx, cred, ver)
            except AlreadyExists:
                raise AlreadyExists(f"{addr} was created by someone else meanwhile") from None
            op.detail = {"connected": True, "provider": provider, "grant": conn.grant}
        else:
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
            ver = s.records.seal(tx, cred.id, cred.version, kind, values, "reconnected", by=by)
            s.records.put_version(tx, cred, ver)
            cred = s.records.put(tx, cred)
            op.detail = {"repaired": True, "provider": provider, "grant": conn.grant}
        op.version = cred.version
        return credential_info(cred, ver, None)

    info: CredentialInfo = s.ops.run("write", addr, work)
    return info
