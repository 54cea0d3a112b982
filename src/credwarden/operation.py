"""The operation pipeline's public names: who an operation is for, what its audit event will
say, and the small protocols domain code is handed instead of the facade.

Every operation runs through the facade as authorize -> work in one transaction -> one audit
event (DESIGN.md). Domain code (oauth/, lifecycle/, ...) takes part in that pipeline only
through `Operations`, reaches records and keys through `records.Records`, and raises alerts
through an `AlertSink`: it never imports the facade.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar

from .store import Tx

if TYPE_CHECKING:
    from .records import Records

T = TypeVar("T")


class Principal(NamedTuple):
    """Who is calling. `root` is the local holder of the master key, who can decrypt
    everything anyway and so is not limited by grants (as Vault's root token)."""

    name: str
    type: str = "user"
    root: bool = False


class Caller(NamedTuple):
    """Who an operation is done for: the principal, the interface, and (over the API) where
    the request came from ({"ip", "user_agent", "token"})."""

    principal: Principal
    source: str
    client: dict[str, Any] | None = None


CALLER: ContextVar[Caller | None] = ContextVar("credwarden_caller", default=None)
"""The caller of the operation running in this thread or task (set by `Warden.acting_as`)."""


class Op:
    """An audit event's draft: what an operation tells its event (never a secret value), and
    for whom it is done (captured where the operation starts: the event may be written by
    another thread)."""

    __slots__ = ("caller", "detail", "version")

    def __init__(self, version: int | None = None, detail: dict[str, Any] | None = None) -> None:
        self.version = version
        self.detail: dict[str, Any] = {} if detail is None else detail
        self.caller = CALLER.get()


Entry = tuple[str, str | None, str, Op]
"""One event to write: (action, address, result, draft)."""

Work = Callable[[Tx, Op], T]
"""An operation's work: runs in the operation's transaction and fills in its event's draft."""


class Operations(Protocol):
    """The operation pipeline as domain code sees it (implemented by the facade)."""

    @property
    def principal(self) -> Principal:
        """The principal the current operation is done for."""

    def acting_as(
        self, principal: Principal, *, source: str = "api", client: dict[str, Any] | None = None
    ) -> AbstractContextManager[object]:
        """Operations in this block (this thread or task) are done for `principal`."""

    def allowed(self, action: str, address: str | None) -> bool:
        """Whether the caller's grants allow `action` (no event)."""

    def authorize(
        self, action: str, address: str | None, op: Op | None = None, *, audit_as: str | None = None
    ) -> None:
        """Refuse with PermissionDenied, and audit the refusal, unless `action` is allowed."""

    def run(
        self,
        action: str,
        address: str | None,
        work: Callable[[Tx, Op], T],
        *,
        grouped: bool | None = None,
        needs: str | None = None,
    ) -> T:
        """Authorize, do `work` in one transaction and write its one event there (failures are
        audited too). `needs`: the grant action to check when `action` is not one itself."""

    def audit(self, tx: Tx, entries: Sequence[Entry]) -> None:
        """Write events inside `tx` (for work that accounts for other callers' operations)."""

    def audit_alone(self, action: str, address: str | None, result: str, op: Op) -> None:
        """Write one event in a transaction of its own."""

    def commit_events(self, entries: Sequence[Entry]) -> None:
        """Write several events in one transaction of their own."""


class AlertSink(Protocol):
    """Where the domain's alerts leave (needs_reauth, invalid, expiring, ...): one method."""

    def alert(self, rule: str, address: str | None, detail: dict[str, Any]) -> None:
        """Raise an alert; never raises (a sink that fails must not fail the operation)."""


class Services(NamedTuple):
    """What the facade hands domain code: the operation pipeline, the records behind the
    barrier, and where alerts go."""

    ops: Operations
    records: Records
    alerts: AlertSink


class NoAlerts:
    """The sink used until one is configured: alerts are dropped."""

    def alert(self, rule: str, address: str | None, detail: dict[str, Any]) -> None:
        return None


__all__ = [
    "CALLER",
    "AlertSink",
    "Caller",
    "Entry",
    "NoAlerts",
    "Op",
    "Operations",
    "Principal",
    "Services",
    "Work",
]
