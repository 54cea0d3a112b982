"""Tokens minted from service accounts: cached per credential version, scope set and subject,
encrypted under the version's data key, and minted once at a time (in-process lock plus the
store's lock, as for OAuth refresh)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Sequence

from ..crypto.barrier import b64d
from ..crypto.envelope import open_field, seal_field
from ..errors import CredentialInvalid, CredwardenError, ValidationError
from ..model import NS_TOKEN, CredentialRecord, b64e, dumps
from ..operation import Op, Services
from ..secret import Secret
from ..store import Tx, rows
from ..store.rows import STR, TIME, opt
from ..timeutil import iso, utcnow
from .tokens import TokenSet, is_fresh

LOCK_WAIT_S = 30.0
_guard = threading.Lock()
_locks: dict[str, threading.Lock] = {}


MINTED_SHAPE = rows.Shape("minted token", {"token": STR}, {"expires_at": opt(TIME)})


class _NeedsMint(Exception):
    """Internal: no fresh cached token (not an error, never audited)."""


def _key(cred: CredentialRecord, digest: str) -> str:
    return f"{cred.id}/{cred.version:010d}/{digest}"


def _aad(cred: CredentialRecord, digest: str) -> bytes:
    return f"cw1|token|{cred.id}|{cred.version}|{digest}".encode()


def minted_token(
    s: Services,
    addr: str,
    *,
    kind: str,
    scopes: Sequence[str],
    subject: str | None,
    leeway: int,
    mint: Callable[[dict[str, str], list[str], str | None], TokenSet],
) -> Secret:
    wanted = sorted(set(scopes))
    if not wanted:
        raise ValidationError(
            f"{addr} is a {kind}: say which scopes the token is for",
            hint="e.g. --scope https://www.googleapis.com/auth/bigquery",
        )
    digest = hashlib.sha256(json.dumps([wanted, subject]).encode()).hexdigest()[:16]

    def read(tx: Tx, op: Op) -> str:
        cred = s.records.load(tx, addr)
        if cred.kind != kind:
            raise ValidationError(f"{addr} is a {cred.kind} credential, not a {kind}")
        ver = s.records.load_version(tx, cred)
        op.version = cred.version
        op.detail = {"scopes": wanted, **({"subject": subject} if subject else {})}
        rec = tx.get(NS_TOKEN, _key(cred, digest))
        if rec is not None:
            body = MINTED_SHAPE.decode(rec.body, rows.record_name(NS_TOKEN, rec.key))
            if is_fresh(body.get("expires_at"), utcnow(), leeway):
                dek = s.records.data_key(tx, cred.id, ver)
                return open_field(dek, b64d(body["token"]), _aad(cred, digest)).decode()
        raise _NeedsMint

    try:
        return Secret(s.ops.run("use", addr, read))
    except _NeedsMint:
        pass
    with _guard:
        local = _locks.setdefault(f"{s.records.barrier.store_id}:{addr}:{digest}", threading.Lock())
    with local, s.records.store.lock(f"mint:{addr}:{digest}", timeout=LOCK_WAIT_S):
        try:
            return Secret(s.ops.run("use", addr, read))  # minted by someone else meanwhile
        except _NeedsMint:
            pass
        with s.records.store.transaction(write=False) as tx:
            cred = s.records.load(tx, addr)
            values = s.records.values(tx, cred, s.records.load_version(tx, cred))
        try:
            tokens = mint(values, wanted, subject)
        except CredwardenError as exc:
            _failed(s, addr, cred.version, exc, wanted)
            raise
        _store(s, addr, cred, digest, tokens, wanted, subject)
    return Secret(s.ops.run("use", addr, read))


def _store(
    s: Services,
    addr: str,
    seen: CredentialRecord,
    digest: str,
    tokens: TokenSet,
    scopes: list[str],
    subject: str | None,
) -> None:
    def work(tx: Tx, op: Op) -> None:
        cred = s.records.load(tx, addr)
        if cred.version != seen.version:
            return  # the key changed meanwhile: this token belongs to the old one, drop it
        ver = s.records.load_version(tx, cred)
        dek = s.records.data_key(tx, cred.id, ver)
        body = dumps(
            {
                "expires_at": tokens.expires_at,
                "token": b64e(seal_field(dek, tokens.access_token.encode(), _aad(cred, digest))),
            }
        )
        key = _key(cred, digest)
        old = tx.get(NS_TOKEN, key)
        tx.put(NS_TOKEN, key, body, rev=old.rev if old else 0)
        if cred.health_override == "invalid":
            s.records.put(tx, cred._replace(health_override=None, updated_at=iso(utcnow())))
        op.version = cred.version
        op.detail = {
            "scopes": scopes,
            "expires_at": tokens.expires_at,
            **({"subject": subject} if subject else {}),
        }

    s.ops.run("mint", addr, work, grouped=False)


def _failed(s: Services, addr: str, version: int, exc: CredwardenError, scopes: list[str]) -> None:
    """A refused key marks the credential invalid (audited); a transient failure is audited."""
    op = Op(version, {"scopes": scopes, "error": exc.code})
    with s.records.store.transaction() as tx:
        cred = s.records.load(tx, addr)
        if isinstance(exc, CredentialInvalid):
            op.detail["health"] = "invalid"
            s.records.put(tx, cred._replace(health_override="invalid", updated_at=iso(utcnow())))
        s.ops.audit(tx, [("mint", addr, "error", op)])
    if isinstance(exc, CredentialInvalid):
        s.alerts.alert("invalid", addr, {"reason": exc.code})
