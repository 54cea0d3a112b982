"""Using credentials: access tokens (OAuth connections refreshed, service accounts minted),
HTTP headers, live tests against the provider, and OAuth connections (connect, repair,
connect through a server). The flows and the refresh coordination live in oauth/; this
module hands them the pipeline and the records, and asks each kind how it gives tokens."""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from ..address import parse_address
from ..errors import ValidationError
from ..kinds import get_kind
from ..lifecycle.health import credential_info
from ..model import CredentialInfo
from ..operation import Entry, Op, Principal, Services
from ..secret import Secret
from ..store import Tx
from ..timeutil import iso, utcnow
from .credentials import CredentialOps
from .pipeline import Pipeline

T = TypeVar("T")


class ConnectionOps(CredentialOps):
    """Tokens, headers, live tests and OAuth connections."""

    _flights: Any = None  # oauth.ops.Flights of this process, made on first refresh

    def _services(self) -> Services:
        return Services(self.ops, self.records, self.alerts)

    def _refresher(self, services: Services | None = None) -> Any:
        from ..oauth.ops import Flights, Refresher

        if self._flights is None:
            self._flights = Flights()
        return Refresher(services or self._services(), self._flights)

    # -- tokens and headers -------------------------------------------------------------------

    def access_token(
        self,
        address: str,
        *,
        scopes: Sequence[str] = (),
        subject: str | None = None,
        leeway: int = 60,
        rejected: Secret | None = None,
    ) -> Secret:
        """A valid access token. An OAuth connection's is refreshed (once, whatever the
        concurrency) when within `leeway` seconds of expiry, or when `rejected` (a token an API
        answered 401 to) is still the stored one; a service account mints one for `scopes`
        (and `subject`: domain-wide delegation), cached until near expiry."""
        addr = str(parse_address(address))
        return self._token_via(self._services(), addr, scopes, subject, leeway, rejected)

    def _token_via(
        self,
        services: Services,
        addr: str,
        scopes: Sequence[str],
        subject: str | None,
        leeway: int,
        rejected: Secret | None,
    ) -> Secret:
        """Ask the credential's kind how it gives tokens: minted, or refreshed."""
        kind = self.records.kind_of(addr)
        mint = _minter(kind, subject) if kind is not None else None
        if kind is not None and mint is not None:
            from ..oauth.minted import minted_token

            return minted_token(
                services,
                addr,
                kind=kind,
                scopes=scopes,
                subject=subject,
                leeway=leeway,
                mint=mint,
            )
        from ..oauth.ops import access_token

        return access_token(self._refresher(services), addr, leeway=leeway, rejected=rejected)

    def auth(self, address: str) -> Any:
        """An `httpx.Auth` sending the connection's token; on a 401 it refreshes once and
        retries once."""
        from ..oauth.httpx_auth import WardenAuth

        return WardenAuth(self, address)

    def refresh_due(self, *, within: int = 300) -> builtins.list[dict[str, Any]]:
        """Refresh the connections expiring within `within` seconds (the scheduler's job)."""
        from ..oauth.ops import refresh_due

        # An audited `list` (one event per run): the job reads what the caller may see.
        addresses = [c.address for c in self.list(kind="oauth2")]
        return refresh_due(self._refresher(), addresses, within=within)

    def headers(self, address: str) -> dict[str, Secret]:
        """The HTTP headers that authenticate with this credential. For an OAuth connection, an
        access token (refreshed first if needed): the `use` action. For a static secret (API
        key, password) the header carries the long-lived secret itself: the `read` action."""
        addr = str(parse_address(address))
        kind = self.records.kind_of(addr)
        if kind is not None and get_kind(kind).refreshable:
            # access_token() refreshes if needed and audits the use.
            return {"Authorization": Secret(f"Bearer {self.access_token(addr).reveal()}")}

        def work(tx: Tx, op: Op) -> dict[str, str]:
            cred = self.records.load(tx, addr)
            ver = self.records.load_version(tx, cred)
            op.version = cred.version
            headers = get_kind(cred.kind).headers(self.records.values(tx, cred, ver))
            op.detail = {"via": "headers", "headers": sorted(headers)}
            return headers

        return {k: Secret(v) for k, v in self._run("read", addr, work).items()}

    # -- live tests ----------------------------------------------------------------------------

    def test(
        self,
        address: str,
        *,
        template_vars: Mapping[str, str] | None = None,
        timeout: float = 15.0,
    ) -> Any:
        """Check a credential live against its provider: one `test` event with the outcome (a
        refresh or mint the test needed leaves its own event). A rejection marks the credential
        `invalid`; a later success clears it. Returns a livetest.Outcome."""
        from ..lifecycle.livetest import run_test

        addr = str(parse_address(address))
        self.ops.authorize("test", addr)  # before anything is looked at or sent
        subject = _Subject(self, addr)
        try:
            outcome = run_test(subject, self.settings.home, dict(template_vars or {}), timeout)
        except ValidationError:
            raise  # bad input: no event
        except Exception as exc:
            from ..errors import CredwardenError

            if isinstance(exc, CredwardenError):
                self.ops.audit_failure("test", addr, exc, Op(detail={"stage": "prepare"}))
            raise

        def work(tx: Tx, op: Op) -> None:
            cred = self.records.load(tx, addr)
            op.version = cred.version
            op.detail = {
                k: v
                for k, v in outcome._asdict().items()
                if k in ("result", "method", "url", "status", "elapsed_ms", "mode")
            }
            override = cred.health_override
            if outcome.result == "rejected":
                override = "invalid"
            elif outcome.result == "ok" and override in ("invalid", "needs_reauth"):
                override = None
            if override != cred.health_override:
                self.records.put(
                    tx, cred._replace(health_override=override, updated_at=iso(utcnow()))
                )

        self._run("test", addr, work, grouped=False)
        return outcome

    # -- OAuth connections ------------------------------------------------------------------------

    def connect(
        self,
        address: str,
        *,
        provider: str,
        client: str,
        scopes: Sequence[str] = (),
        grant: str = "authorization_code",
        port: int = 0,
        open_url: Callable[[str], None] | None = None,
        show_device: Callable[[dict[str, Any]], None] | None = None,
        template_vars: Mapping[str, str] | None = None,
        timeout: float = 300.0,
    ) -> CredentialInfo:
        """Connect (or repair in place) an OAuth connection with a provider and a client."""
        from ..oauth.connect import connect

        return connect(
            self._services(),
            self.settings.home,
            address,
            provider=provider,
            client=client,
            scopes=scopes,
            grant=grant,
            port=port,
            open_url=open_url,
            show_device=show_device,
            template_vars=dict(template_vars or {}),
            timeout=timeout,
        )

    def connect_start(
        self,
        address: str,
        *,
        provider: str,
        client: str,
        scopes: Sequence[str] = (),
        redirect_uri: str,
        template_vars: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Start an authorization code flow whose redirect comes to a server (`redirect_uri`)
        instead of a loopback listener: {"authorize_url", "flow", "expires_at", "redirect_uri"}.
        The state and PKCE verifier stay in the store (sealed) until `connect_finish`."""
        from ..oauth.connect import connect_start

        return connect_start(
            self._services(),
            self.settings.home,
            address,
            provider=provider,
            client=client,
            scopes=scopes,
            redirect_uri=redirect_uri,
            template_vars=dict(template_vars or {}),
        )

    def connect_finish(
        self, state: str, query: Mapping[str, str], *, client: dict[str, Any] | None = None
    ) -> CredentialInfo:
        """Finish a flow begun by `connect_start` with the redirect's query (code, state or
        error): once only, as the principal who started it."""
        from ..oauth.connect import connect_finish

        return connect_finish(self._services(), state, dict(query), client=client)

    def connect_status(self, flow: str) -> dict[str, Any]:
        """{"status": "pending" | "done" | "failed" | "expired" | "unknown"} of a flow begun by
        `connect_start` (the caller must have started it or may describe its address)."""
        from ..oauth.connect import connect_status

        return connect_status(self._services(), flow)


def _minter(kind: str, subject: str | None) -> Any:
    """How a service-account kind mints tokens (None: not a minting kind)."""
    if kind == "google_service_account":
        from ..oauth.google import mint

        return lambda values, s, sub: mint(json.loads(values["key_json"]), s, sub)
    if kind == "azure_service_principal":
        from ..oauth.azure import mint as mint_entra

        if subject:
            raise ValidationError("--subject is for Google service accounts")
        return lambda values, s, _sub: mint_entra(values, s)
    return None


class _Subject:
    """A credential under live test: its values and tokens are taken as steps of the test
    operation (no `read`/`use` events of their own; the test's event records them)."""

    def __init__(self, w: ConnectionOps, addr: str) -> None:
        self._w = w
        self._addr = addr
        with w._store.transaction(write=False) as tx:
            cred = w.records.load(tx, addr)
            self.info = credential_info(cred, w.records.load_version(tx, cred), None)

    def values(self) -> Mapping[str, str]:
        records = self._w.records
        with records.store.transaction(write=False) as tx:
            cred = records.load(tx, self._addr)
            return records.values(tx, cred, records.load_version(tx, cred))

    def token(self, scopes: Sequence[str]) -> str:
        quiet = Services(_PartOfTest(self._w.ops), self._w.records, self._w.alerts)
        return self._w._token_via(quiet, self._addr, scopes, None, 60, None).reveal()


class _PartOfTest:
    """The pipeline for the token a live test obtains: its `use` steps leave no event of
    their own (the test's event records them); a refresh or mint keeps its event."""

    QUIET = frozenset({"use"})

    def __init__(self, ops: Pipeline) -> None:
        self._ops = ops

    @property
    def principal(self) -> Principal:
        return self._ops.principal

    def acting_as(
        self, principal: Principal, *, source: str = "api", client: dict[str, Any] | None = None
    ) -> AbstractContextManager[object]:
        return self._ops.acting_as(principal, source=source, client=client)

    def allowed(self, action: str, address: str | None) -> bool:
        return self._ops.allowed(action, address)

    def authorize(
        self, action: str, address: str | None, op: Op | None = None, *, audit_as: str | None = None
    ) -> None:
        self._ops.authorize(action, address, op, audit_as=audit_as)

    def run(
        self,
        action: str,
        address: str | None,
        work: Callable[[Tx, Op], T],
        *,
        grouped: bool | None = None,
        needs: str | None = None,
    ) -> T:
        if action in self.QUIET:
            return self._ops.within(work)
        return self._ops.run(action, address, work, grouped=grouped, needs=needs)

    def audit(self, tx: Tx, entries: Sequence[Entry]) -> None:
        self._ops.audit(tx, [e for e in entries if e[0] not in self.QUIET])

    def audit_alone(self, action: str, address: str | None, result: str, op: Op) -> None:
        if action not in self.QUIET:
            self._ops.audit_alone(action, address, result, op)

    def commit_events(self, entries: Sequence[Entry]) -> None:
        self._ops.commit_events([e for e in entries if e[0] not in self.QUIET])


__all__ = ["ConnectionOps"]
