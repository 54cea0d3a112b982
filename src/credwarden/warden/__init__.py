"""The facade: every operation is authorize -> work -> one audit event, here and nowhere else.

Interfaces (CLI, API) and the Python SDK reach the store only through `Warden`, composed of
one module per capability:

    credentials.py   get, read, show/describe, list, history, add, update, rollback, remove
    environments.py  environments, import, env vars for `run`
    connections.py   access tokens (refresh, mint), headers, live tests, OAuth connect
    access.py        principals, API tokens, grants, token authentication
    reports.py       expiring / rotation / unused reports, the permissions review
    audit.py         the audit log, its verification, key rotation, health
    pipeline.py      the operation path itself (authorize, transaction, event, group commit)
    opening.py       opening and creating a store
    checks.py        checks of caller input
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..access.policy import Policy
from ..operation import Principal
from ..settings import Settings
from .audit import AuditOps
from .checks import env_var_address
from .connections import ConnectionOps
from .environments import EnvironmentOps
from .opening import InitReport, init_store, open_local
from .reports import ReportOps

if TYPE_CHECKING:
    from ..facade import Facade


class Warden(ReportOps, EnvironmentOps, ConnectionOps, AuditOps):
    """The one entry point to credentials: `Warden.open()` then `get`, `add`, `list`, ..."""

    @classmethod
    def open(
        cls,
        *,
        home: str | os.PathLike[str] | None = None,
        database_url: str | None = None,
        settings: Settings | None = None,
        source: str = "sdk",
        prompt: Callable[[str, bool], str] | None = None,
        principal: Principal | None = None,
        policy: Policy | None = None,
    ) -> Facade:
        """Open the store named by the environment (CREDWARDEN_HOME, ..._DATABASE_URL, key
        vars), or, with CREDWARDEN_URL set, the server it names (remote mode)."""
        if database_url is None and home is None and os.environ.get("CREDWARDEN_URL"):
            from ..remote import RemoteWarden

            return RemoteWarden.from_env(source=source)
        return cls.open_local(
            home=home,
            database_url=database_url,
            settings=settings,
            source=source,
            prompt=prompt,
            principal=principal,
            policy=policy,
        )

    @classmethod
    def open_local(
        cls,
        *,
        home: str | os.PathLike[str] | None = None,
        database_url: str | None = None,
        settings: Settings | None = None,
        source: str = "sdk",
        prompt: Callable[[str, bool], str] | None = None,
        principal: Principal | None = None,
        policy: Policy | None = None,
    ) -> Warden:
        """Open the store itself (never a server): for `serve` and code that needs the
        store-side operations (authentication, the scheduler's jobs)."""
        settings = settings or Settings.from_env(home=home, database_url=database_url)
        return open_local(cls, settings, source, prompt, principal, policy)

    @classmethod
    def init(
        cls,
        *,
        home: str | os.PathLike[str] | None = None,
        database_url: str | None = None,
        settings: Settings | None = None,
        source: str = "sdk",
        prompt: Callable[[str, bool], str] | None = None,
        environments: Sequence[str] | None = None,
    ) -> tuple[Warden, InitReport]:
        """Create the store and its keys; on an initialised store, check the key and return."""
        settings = settings or Settings.from_env(home=home, database_url=database_url)
        return init_store(cls, settings, source, prompt, environments)


__all__ = ["InitReport", "Warden", "env_var_address"]
