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
from collections.abc import Iterable
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
from ..operation import Op, Services
from ..records import Records
from ..secret import Secret
from ..store import Tx
from ..timeutil import iso, utcnow
from .tokens import DEFAULT_LEEWAY_S, is_fresh

if TYPE_CHECKING:
    from .endpoint import ClientAuth

LOCK_WAIT_S = 30.0
BACKOFF_S = (5.0, 15.0, 60.0, 300.0)


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
        self.waiters: list[Op] = []
        self.closed = False


class Flights:
    """In-process single flight per connection, and back-off after transient failures."""

    def __init__(self) -> None:
        self.guard = threading.Lock()
        self.active: dict[str, _Flight] = {}
        self.backoff: dict[str, tuple[float, int]] = {}  # address -> (retry after, failures)
        self.expiry: dict[str, tuple[int, str | None]] = {}  # address -> last seen (version, exp)


def access_token(
    r: Refresher, address: str, *, leeway: int = DEFAULT_LEEWAY_S, rejected: Secret | None = None
) -> Secret:
    """A valid access token for an oauth2 connection, refreshed first if needed. `rejected` is a
    token the API refused (401): refresh unless the stored token is already another one."""
    addr = str(parse_address(address))
    r.ops.authorize("use", addr)  # before joining a flight: a waiter is handed the token
    seen: int | None = None
    force = rejected is not None
    want = leeway
    flights = r.flights
    hint = flights.expiry.get(addr)
    if not force and hint is not None and not is_fresh(hint[1], utcnow(), leeway):
        # This process saw the token go stale: join (or lead) the refresh without a read; the
        # leader re-reads under the locks, so a stale hint costs a lock round, never a refresh.
        token = _refresh(r, addr, hint[0], leeway=leeway, rejected=None)
        if token is not None:
            return Secret(token)
        want = 0
    for _ in range(3):
        if not force:
            try:
                return Secret(
                    r.ops.run("use", addr, functools.partial(_fresh_token, r, addr, want))
                )
            except _NeedsRefresh as need:
                seen = need.version
        token = _refresh(
            r, addr, seen, leeway=leeway, rejected=rejected.reveal() if force and rejected else None
        )
        if token is not None:
            return Secret(token)
        force = False
        want = 0  # just refreshed, by us or by another caller: any unexpired token will do
    raise CredentialInvalid(
        f"{addr} could not be kept fresh: its new token expires within the leeway",
        hint="the provider issues very short-lived tokens; lower the leeway",
    )


def _load_connection(r: Refresher, tx: Tx, addr: str) -> tuple[CredentialRecord, VersionRecord]:
    cred = r.records.load(tx, addr)
    if cred.kind != "oauth2":
        raise ValidationError(
            f"{addr} is a {cred.kind} credential, not an OAuth connection",
            hint="tokens come from oauth2 connections (`credwarden connect`)",
        )
    return cred, r.records.load_version(tx, cred)


def _fresh_token(r: Refresher, addr: str, leeway: int, tx: Tx, op: Op) -> str:
    cred, ver = _load_connection(r, tx, addr)
    if cred.health_override == "needs_reauth":
        raise CredentialInvalid(
            f"{addr} needs re-authentication: its grant was revoked or expired",
            hint=f"reconnect it in place: credwarden connect {addr} --provider ... --client ...",
        )
    op.version = cred.version
    r.flights.expiry[addr] = (cred.version, ver.plain.get("expires_at"))
    if not is_fresh(ver.plain.get("expires_at"), utcnow(), leeway):
        backoff = r.flights.backoff.get(addr)
        still_valid = is_fresh(ver.plain.get("expires_at"), utcnow(), 0)
        if not (backoff and backoff[0] > time.monotonic() and still_valid):
            raise _NeedsRefresh(cred.version)
        op.detail["stale_while_backing_off"] = True
    return r.records.decrypt(tx, cred, ver, ("access_token",))["access_token"]


def _refresh(
    r: Refresher, addr: str, seen: int | None, *, leeway: int, rejected: str | None
) -> str | None:
    """Single flight: the first caller of this process refreshes (or finds that another process
    did) and hands the token to the callers that queued meanwhile; returns the token, or None
    when the caller should look again."""
    flights = r.flights
    with flights.guard:
        flight = flights.active.get(addr)
        leader = flight is None or flight.closed
        if leader:
            flight = flights.active[addr] = _Flight()
        else:
            assert flight is not None
            mine = Op(None, {})
            flight.waiters.append(mine)
    assert flight is not None
    if not leader:
        if not flight.done.wait(LOCK_WAIT_S + 30):
            raise LockTimeout(f"{addr} is being refreshed by another thread for too long")
        if flight.error is not None:
            raise flight.error
        return flight.token
    try:
        _refresh_locked(r, flights, addr, seen, leeway=leeway, rejected=rejected)
        flight.token = _hand_out(r, flights, addr, flight)
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
            r.ops.commit_events([("use", addr, "error", waiter) for waiter in waiters])
        raise
    finally:
        with flights.guard:
            if flights.active.get(addr) is flight:
                del flights.active[addr]
        flight.done.set()


def _hand_out(r: Refresher, flights: Flights, addr: str, flight: _Flight) -> str:
    """The current token for the leader and every waiter: one transaction, one event each."""
    with flights.guard:
        flight.closed = True  # later callers start a new flight (and find the token fresh)
        waiters = list(flight.waiters)

    def work(tx: Tx, op: Op) -> str:
        cred, ver = _load_connection(r, tx, addr)
        if cred.health_override == "needs_reauth":
            raise CredentialInvalid(f"{addr} needs re-authentication")
        if not is_fresh(ver.plain.get("expires_at"), utcnow(), 0):
            raise CredentialInvalid(f"{addr} has expired and could not be refreshed")
        token = r.records.decrypt(tx, cred, ver, ("access_token",))["access_token"]
        flights.expiry[addr] = (cred.version, ver.plain.get("expires_at"))
        op.version = cred.version
        op.detail = {"after_refresh": True, "waiters": len(waiters)}
        for waiter in waiters:
            waiter.version, waiter.detail = cred.version, {"after_refresh": True}
        r.ops.audit(tx, [("use", addr, "ok", waiter) for waiter in waiters])
        return token

    token: str = r.ops.run("use", addr, work, grouped=False)
    return token


def _refresh_locked(
    r: Refresher,
    flights: Flights,
    addr: str,
    seen: int | None,
    *,
    leeway: int,
    rejected: str | None,
) -> None:
    """Under the store's lock: refresh unless another process (or thread) already did."""
    with r.records.store.lock(f"refresh:{addr}", timeout=LOCK_WAIT_S):
        with r.records.store.transaction(write=False) as tx:
            cred, ver = _load_connection(r, tx, addr)
            values = r.records.values(tx, cred, ver)
            client = client_auth(r.records, tx, values.get("client", ""))
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
            _after_failure(r, addr, cred.version, values, exc)
            return
        flights.backoff.pop(addr, None)
        _store_tokens(r, addr, cred.version, {**values, **tokens.fields()}, note="refreshed")


def _after_failure(
    r: Refresher, addr: str, version: int, values: dict[str, str], exc: CredwardenError
) -> None:
    from .endpoint import OAuthError, Transient

    if isinstance(exc, Transient):
        flights = r.flights
        _, failures = flights.backoff.get(addr, (0.0, 0))
        delay = BACKOFF_S[min(failures, len(BACKOFF_S) - 1)]
        flights.backoff[addr] = (time.monotonic() + delay, failures + 1)
        r.ops.audit_alone("refresh", addr, "error", Op(version, {"error": exc.code}))
        if is_fresh(values.get("expires_at"), utcnow(), 0):
            return  # keep serving the token that is still valid
        raise CredentialInvalid(
            f"{addr} has expired and the provider cannot refresh it now ({exc.message})",
            hint="retry in a moment; the provider may be down",
        ) from None
    if isinstance(exc, OAuthError) and exc.error == "invalid_grant":
        # Re-check: a refresh by another node may have rotated the token we just used.
        with r.records.store.transaction(write=False) as tx:
            current = r.records.load(tx, addr)
        if current.version != version:
            return
        _mark_needs_reauth(r, addr, version, exc.error)
        raise CredentialInvalid(
            f"{addr} needs re-authentication: the provider answered invalid_grant",
            hint=f"reconnect it in place: credwarden connect {addr} --provider ... --client ...",
        ) from None
    r.ops.audit_alone("refresh", addr, "error", Op(version, {"error": exc.code}))
    raise exc


def _mark_needs_reauth(r: Refresher, addr: str, version: int, reason: str) -> None:
    def work(tx: Tx, op: Op) -> None:
        cred = r.records.load(tx, addr)
        op.version = cred.version
        op.detail = {"health": "needs_reauth", "reason": reason}
        r.records.put(tx, cred._replace(health_override="needs_reauth", updated_at=iso(utcnow())))

    r.ops.run("refresh", addr, work)
    r.alerts.alert("needs_reauth", addr, {"reason": reason})


def client_auth(records: Records, tx: Tx, client_address: str) -> ClientAuth | None:
    """The client id, secret and auth method of a connection's client credential (read
    inside the operation that needs them: no event of its own)."""
    from .endpoint import ClientAuth

    if not client_address:
        return None
    cred = records.load(tx, client_address)
    ver = records.load_version(tx, cred)
    values = records.values(tx, cred, ver)
    secret = values.get("client_secret")
    method = values.get("auth_method") or ("client_secret_basic" if secret else "none")
    return ClientAuth(values["client_id"], secret, method)


def _store_tokens(
    r: Refresher, addr: str, from_version: int, values: dict[str, str], *, note: str
) -> None:
    """Commit the new token set as a new version; retried on a metadata race, never lost."""
    from ..kinds import get_kind

    kind = get_kind("oauth2")
    checked = kind.validate(values)
    for _ in range(5):
        try:
            r.ops.run("refresh", addr, lambda tx, op: _write(r, tx, op, addr, kind, checked, note))
            return
        except Conflict:
            continue
    raise Conflict(f"{addr} kept changing while its new token set was being stored")


def _write(
    r: Refresher, tx: Tx, op: Op, addr: str, kind: Any, values: dict[str, str], note: str
) -> None:
    cred = r.records.load(tx, addr)
    now = iso(utcnow())
    cred = cred._replace(
        version=cred.version + 1, updated_at=now, rotated_at=now, health_override=None
    )
    ver = r.records.seal(tx, cred.id, cred.version, kind, values, note, by=r.ops.principal.name)
    r.records.put_version(tx, cred, ver)
    r.records.put(tx, cred)
    op.version = cred.version
    op.detail = {"expires_at": values.get("expires_at"), "client": values.get("client")}


def refresh_due(r: Refresher, addresses: Iterable[str], *, within: int) -> list[dict[str, Any]]:
    """Refresh each of these oauth2 connections that expires within `within` seconds (the
    scheduler's job): per address, whether it now holds a valid token."""
    results = []
    for address in addresses:
        try:
            access_token(r, address, leeway=within)
            results.append({"address": address, "ok": True})
        except CredwardenError as exc:
            results.append({"address": address, "ok": False, "error": exc.code})
    return results


class Refresher:
    """What the refresh coordination needs from the facade, and this process's flights (one
    `Flights` per process and store, shared by every Refresher made over it)."""

    def __init__(self, services: Services, flights: Flights) -> None:
        self.ops = services.ops
        self.records = services.records
        self.alerts = services.alerts
        self.flights = flights
