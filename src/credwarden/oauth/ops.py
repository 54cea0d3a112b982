"""The OAuth operations of the facade: tokens that stay valid, refreshed once at a time.

Refresh coordination (DESIGN.md invariant 3): a caller whose token is within the
leeway of expiry takes, in order, the in-process single-flight lock of the
connection and the store's lock for it (a file lock on SQLite, an advisory lock on
PostgreSQL: both released only by the holder or its death, never by a timeout).
Holding both, it re-reads the connection: if someone refreshed meanwhile it uses
that token. Otherwise it refreshes, commits the new token set (keeping a refresh
token the provider did not return), and only then hands out the access token. An
`invalid_grant` is re-checked against the stored state before the connection is
marked `needs_reauth`; a transient failure backs off and keeps serving a token
that has not yet expired. A caller that cannot get the lock in time gets
LockTimeout (exit 7): never an uncoordinated refresh.
"""

from __future__ import annotations

import functools
import threading
import time
from typing import TYPE_CHECKING, Any

from ..address import parse_address
from ..errors import (
    Conflict,
    CredentialInvalid,
    CredwardenError,
    LockTimeout,
    ValidationError,
)
from ..model import CredentialRecord, VersionRecord
from ..secret import Secret
from ..timeutil import iso, utcnow
from .tokens import DEFAULT_LEEWAY_S, is_fresh

if TYPE_CHECKING:
    from ..store import Tx
    from ..warden import Warden, _Op

LOCK_WAIT_S = 30.0
BACKOFF_S = (5.0, 15.0, 60.0, 300.0)


def _op_of(version: int | None, detail: dict[str, Any]) -> _Op:
    from ..warden import _Op

    return _Op(version, detail)


class _NeedsRefresh(Exception):
    """Internal: the stored token is too close to expiry (not an error, never audited)."""

    def __init__(self, version: int) -> None:
        self.version = version


class _Flight:
    """One refresh in this process. Callers that arrive while it runs wait, and get the token
    from the leader, whose one transaction also writes each waiter's `use` event."""

    __slots__ = ("closed", "done", "error", "token", "waiters")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.token: str | None = None
        self.waiters: list[_Op] = []
        self.closed = False


class Flights:
    """In-process single flight per connection, and back-off after transient failures."""

    def __init__(self) -> None:
        self.guard = threading.Lock()
        self.active: dict[str, _Flight] = {}
        self.backoff: dict[str, tuple[float, int]] = {}  # address -> (retry after, failures)
        self.expiry: dict[str, tuple[int, str | None]] = {}  # address -> last seen (version, exp)


def _flights(w: Warden) -> Flights:
    flights: Flights | None = getattr(w, "_flights", None)
    if flights is None:
        flights = w._flights = Flights()
    return flights


def access_token(
    w: Warden, address: str, *, leeway: int = DEFAULT_LEEWAY_S, rejected: Secret | None = None
) -> Secret:
    """A valid access token for an oauth2 connection, refreshed first if needed. `rejected` is a
    token the API refused (401): refresh unless the stored token is already another one."""
    addr = str(parse_address(address))
    w._authorize("use", addr)  # before joining a flight: a waiter is handed the token
    seen: int | None = None
    force = rejected is not None
    want = leeway
    flights = _flights(w)
    hint = flights.expiry.get(addr)
    if not force and hint is not None and not is_fresh(hint[1], utcnow(), leeway):
        # This process saw the token go stale: join (or lead) the refresh without a read; the
        # leader re-reads under the locks, so a stale hint costs a lock round, never a refresh.
        token = _refresh(w, addr, hint[0], leeway=leeway, rejected=None)
        if token is not None:
            return Secret(token)
        want = 0
    for _ in range(3):
        if not force:
            try:
                return Secret(w._op("use", addr, functools.partial(_fresh_token, w, addr, want)))
            except _NeedsRefresh as need:
                seen = need.version
        token = _refresh(
            w, addr, seen, leeway=leeway, rejected=rejected.reveal() if force and rejected else None
        )
        if token is not None:
            return Secret(token)
        force = False
        want = 0  # just refreshed, by us or by another caller: any unexpired token will do
    raise CredentialInvalid(
        f"{addr} could not be kept fresh: its new token expires within the leeway",
        hint="the provider issues very short-lived tokens; lower the leeway",
    )


def _load_connection(w: Warden, tx: Tx, addr: str) -> tuple[CredentialRecord, VersionRecord]:
    cred = w._load(tx, addr)
    if cred.kind != "oauth2":
        raise ValidationError(
            f"{addr} is a {cred.kind} credential, not an OAuth connection",
            hint="tokens come from oauth2 connections (`credwarden connect`)",
        )
    return cred, w._load_version(tx, cred)


def _fresh_token(w: Warden, addr: str, leeway: int, tx: Tx, op: _Op) -> str:
    cred, ver = _load_connection(w, tx, addr)
    if cred.health_override == "needs_reauth":
        raise CredentialInvalid(
            f"{addr} needs re-authentication: its grant was revoked or expired",
            hint=f"reconnect it in place: credwarden connect {addr} --provider ... --client ...",
        )
    op.version = cred.version
    _flights(w).expiry[addr] = (cred.version, ver.plain.get("expires_at"))
    if not is_fresh(ver.plain.get("expires_at"), utcnow(), leeway):
        backoff = _flights(w).backoff.get(addr)
        still_valid = is_fresh(ver.plain.get("expires_at"), utcnow(), 0)
        if not (backoff and backoff[0] > time.monotonic() and still_valid):
            raise _NeedsRefresh(cred.version)
        op.detail["stale_while_backing_off"] = True
    return w._decrypt(tx, cred, ver, ("access_token",))["access_token"]


def _refresh(
    w: Warden, addr: str, seen: int | None, *, leeway: int, rejected: str | None
) -> str | None:
    """Single flight: the first caller of this process refreshes (or finds that another process
    did) and hands the token to the callers that queued meanwhile; returns the token, or None
    when the caller should look again."""
    flights = _flights(w)
    with flights.guard:
        flight = flights.active.get(addr)
        leader = flight is None or flight.closed
        if leader:
            flight = flights.active[addr] = _Flight()
        else:
            assert flight is not None
            mine = _op_of(None, {})
            flight.waiters.append(mine)
    assert flight is not None
    if not leader:
        if not flight.done.wait(LOCK_WAIT_S + 30):
            raise LockTimeout(f"{addr} is being refreshed by another thread for too long")
        if flight.error is not None:
            raise flight.error
        return flight.token
    try:
        _refresh_locked(w, flights, addr, seen, leeway=leeway, rejected=rejected)
        flight.token = _hand_out(w, flights, addr, flight)
        return flight.token
    except BaseException as exc:
        flight.error = (
            exc
            if isinstance(exc, CredwardenError)
            else CredentialInvalid(f"refreshing {addr} failed")
        )
        with flights.guard:
            flight.closed = True
            waiters = list(flight.waiters)
        if waiters:  # each waiting caller's failed `use` is audited too (under its own name)
            code = getattr(flight.error, "code", "error")
            for waiter in waiters:
                waiter.detail = {"error": code}
            w._commit_events([("use", addr, "error", waiter) for waiter in waiters])
        raise
    finally:
        with flights.guard:
            if flights.active.get(addr) is flight:
                del flights.active[addr]
        flight.done.set()


def _hand_out(w: Warden, flights: Flights, addr: str, flight: _Flight) -> str:
    """The current token for the leader and every waiter: one transaction, one event each."""
    with flights.guard:
        flight.closed = True  # later callers start a new flight (and find the token fresh)
        waiters = list(flight.waiters)

    def work(tx: Tx, op: _Op) -> str:
        cred, ver = _load_connection(w, tx, addr)
        if cred.health_override == "needs_reauth":
            raise CredentialInvalid(f"{addr} needs re-authentication")
        if not is_fresh(ver.plain.get("expires_at"), utcnow(), 0):
            raise CredentialInvalid(f"{addr} has expired and could not be refreshed")
        token = w._decrypt(tx, cred, ver, ("access_token",))["access_token"]
        flights.expiry[addr] = (cred.version, ver.plain.get("expires_at"))
        op.version = cred.version
        op.detail = {"after_refresh": True, "waiters": len(waiters)}
        for waiter in waiters:
            waiter.version, waiter.detail = cred.version, {"after_refresh": True}
        w._audit_many(tx, [("use", addr, "ok", waiter) for waiter in waiters])
        return token

    token: str = w._op("use", addr, work, grouped=False)
    return token


def _refresh_locked(
    w: Warden, flights: Flights, addr: str, seen: int | None, *, leeway: int, rejected: str | None
) -> None:
    """Under the store's lock: refresh unless another process (or thread) already did."""
    with w._store.lock(f"refresh:{addr}", timeout=LOCK_WAIT_S):
        with w._store.transaction(write=False) as tx:
            cred, ver = _load_connection(w, tx, addr)
            values = w._values(tx, cred, ver)
            client = _client_auth(w, tx, values.get("client", ""))
        if seen is not None and cred.version != seen:
            return  # someone refreshed while we waited for the locks
        if rejected is not None:
            if values["access_token"] != rejected:
                return  # already replaced since the API refused it
        elif is_fresh(values.get("expires_at"), utcnow(), leeway):
            return
        else:
            backoff = flights.backoff.get(addr)
            if (
                backoff
                and backoff[0] > time.monotonic()
                and is_fresh(values.get("expires_at"), utcnow(), 0)
            ):
                return  # backing off after a provider failure: serve the still-valid token
        from . import grants

        try:
            tokens = grants.refresh(values, client)
        except CredwardenError as exc:
            _after_failure(w, addr, cred.version, values, exc)
            return
        flights.backoff.pop(addr, None)
        _store_tokens(w, addr, cred.version, {**values, **tokens.fields()}, note="refreshed")


def _after_failure(
    w: Warden, addr: str, version: int, values: dict[str, str], exc: CredwardenError
) -> None:
    from .endpoint import OAuthError, Transient

    if isinstance(exc, Transient):
        flights = _flights(w)
        _, failures = flights.backoff.get(addr, (0.0, 0))
        delay = BACKOFF_S[min(failures, len(BACKOFF_S) - 1)]
        flights.backoff[addr] = (time.monotonic() + delay, failures + 1)
        w._audit_alone("refresh", addr, "error", _op_of(version, {"error": exc.code}))
        if is_fresh(values.get("expires_at"), utcnow(), 0):
            return  # keep serving the token that is still valid
        raise CredentialInvalid(
            f"{addr} has expired and the provider cannot refresh it now ({exc.message})",
            hint="retry in a moment; the provider may be down",
        ) from None
    if isinstance(exc, OAuthError) and exc.error == "invalid_grant":
        # Re-check: a refresh by another node may have rotated the token we just used.
        with w._store.transaction(write=False) as tx:
            current = w._load(tx, addr)
        if current.version != version:
            return
        _mark_needs_reauth(w, addr, version, exc.error)
        raise CredentialInvalid(
            f"{addr} needs re-authentication: the provider answered invalid_grant",
            hint=f"reconnect it in place: credwarden connect {addr} --provider ... --client ...",
        ) from None
    w._audit_alone("refresh", addr, "error", _op_of(version, {"error": exc.code}))
    raise exc


def _mark_needs_reauth(w: Warden, addr: str, version: int, reason: str) -> None:
    def work(tx: Tx, op: _Op) -> None:
        cred = w._load(tx, addr)
        op.version = cred.version
        op.detail = {"health": "needs_reauth", "reason": reason}
        w._put_cred(tx, cred._replace(health_override="needs_reauth", updated_at=iso(utcnow())))

    w._op("refresh", addr, work)
    hook = getattr(w, "alert_hook", None)
    if callable(hook):
        hook("needs_reauth", addr, {"reason": reason})


def _client_auth(w: Warden, tx: Tx, client_address: str) -> Any:
    from .endpoint import ClientAuth

    if not client_address:
        return None
    cred = w._load(tx, client_address)
    ver = w._load_version(tx, cred)
    values = w._values(tx, cred, ver)
    secret = values.get("client_secret")
    method = values.get("auth_method") or ("client_secret_basic" if secret else "none")
    return ClientAuth(values["client_id"], secret, method)


def _store_tokens(
    w: Warden, addr: str, from_version: int, values: dict[str, str], *, note: str
) -> None:
    """Commit the new token set as a new version; retried on a metadata race, never lost."""
    from ..kinds import get_kind

    kind = get_kind("oauth2")
    checked = kind.validate(values)
    for _ in range(5):
        try:
            w._op("refresh", addr, lambda tx, op: _write(w, tx, op, addr, kind, checked, note))
            return
        except Conflict:
            continue
    raise Conflict(f"{addr} kept changing while its new token set was being stored")


def _write(
    w: Warden, tx: Tx, op: _Op, addr: str, kind: Any, values: dict[str, str], note: str
) -> None:
    cred = w._load(tx, addr)
    now = iso(utcnow())
    cred = cred._replace(
        version=cred.version + 1, updated_at=now, rotated_at=now, health_override=None
    )
    ver = w._seal(tx, cred.id, cred.version, kind, values, note)
    w._put_version(tx, cred, ver)
    w._put_cred(tx, cred)
    op.version = cred.version
    op.detail = {"expires_at": values.get("expires_at"), "client": values.get("client")}


def refresh_due(w: Warden, *, within: int = 300) -> list[dict[str, Any]]:
    """Refresh every oauth2 connection expiring within `within` seconds (the scheduler's hook)."""
    results = []
    for info in w.list(kind="oauth2"):
        try:
            access_token(w, info.address, leeway=within)
            results.append({"address": info.address, "ok": True})
        except CredwardenError as exc:
            results.append({"address": info.address, "ok": False, "error": exc.code})
    return results
