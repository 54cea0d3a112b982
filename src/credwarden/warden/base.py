"""What every capability of the facade shares: the store's records behind the barrier, the
operation pipeline, who is calling, and where alerts go. Each capability module
(credentials.py, access.py, ...) is a mixin over this base; `Warden` composes them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Self, TypeVar

from ..access.policy import Policy
from ..access.state import AccessCache
from ..audit.chain import AuditChain
from ..crypto.barrier import Barrier
from ..operation import AlertSink, Caller, NoAlerts, Op, Principal
from ..records import Records
from ..settings import Settings, redact_url
from ..store import Store, Tx
from .pipeline import Pipeline

T = TypeVar("T")


class WardenBase:
    """The state of one open store, for one default caller."""

    def __init__(
        self,
        *,
        store: Store,
        barrier: Barrier,
        chain: AuditChain,
        environments: Sequence[str],
        settings: Settings,
        principal: Principal,
        policy: Policy,
        source: str,
    ) -> None:
        self.settings = settings
        self.records = Records(store, barrier, environments)
        self.ops = Pipeline(store, chain, policy, Caller(principal, source))
        self.access: AccessCache = getattr(policy, "access", None) or AccessCache(store)
        self.alerts: AlertSink = NoAlerts()
        """Where alerts go (needs_reauth, invalid, expiring, ...): the next issue's sinks."""
        self.key_source = barrier.key_source
        """Where the master key came from (e.g. "key file /path")."""
        self._chain = chain
        self._store = store

    def __repr__(self) -> str:
        return f"Warden(store={redact_url(self._store.url)!r}, principal={self.principal.name!r})"

    @property
    def store_id(self) -> str:
        return self.records.barrier.store_id

    @property
    def store_dialect(self) -> str:
        """ "sqlite" or "postgres"."""
        return self._store.dialect

    @property
    def environments(self) -> list[str]:
        return self.records.environments

    @environments.setter
    def environments(self, value: list[str]) -> None:
        self.records.environments = list(value)

    @property
    def principal(self) -> Principal:
        """Who the current operation is done for (see `acting_as`)."""
        return self.ops.principal

    @property
    def source(self) -> str:
        return self.ops.caller.source

    @property
    def event_hook(self) -> Callable[[str, str], None] | None:
        """Called with (action, result) for every audit event written (the server's metrics)."""
        return self.ops.event_hook

    @event_hook.setter
    def event_hook(self, hook: Callable[[str, str], None] | None) -> None:
        self.ops.event_hook = hook

    @contextmanager
    def acting_as(
        self, principal: Principal, *, source: str = "api", client: dict[str, Any] | None = None
    ) -> Iterator[Any]:
        """Operations in this block (this thread or task) are done for `principal`: checked
        against its grants and audited under its name, with the client's address."""
        with self.ops.acting_as(principal, source=source, client=client):
            yield self

    def close(self) -> None:
        self.ops.close()
        self.records.close()
        self._store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(
        self,
        action: str,
        address: str | None,
        work: Callable[[Tx, Op], T],
        *,
        grouped: bool | None = None,
        needs: str | None = None,
    ) -> T:
        """The pipeline's `run` (a shorthand for the capability modules)."""
        return self.ops.run(action, address, work, grouped=grouped, needs=needs)


__all__ = ["WardenBase"]
