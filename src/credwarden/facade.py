"""The facade's public operations as one typed interface, implemented by the local facade
(`warden.Warden`, over the store) and by the remote client (`remote.RemoteWarden`, over the
REST API). Interfaces (cli/, the SDK) program against `Facade`; mypy then catches a client
that drifts from the facade.

Nothing is imported at run time: a cold `credwarden get` imports this module.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .access.grants import Grant
    from .access.records import PrincipalRecord
    from .audit.chain import AuditEvent, VerifyReport
    from .lifecycle.livetest import Outcome
    from .model import Credential, CredentialInfo, VersionInfo
    from .operation import Principal
    from .secret import Secret
    from .settings import Settings


class Facade(Protocol):
    """What a caller can do with credwarden, locally or against a server."""

    settings: Settings

    @property
    def principal(self) -> Principal: ...

    @property
    def source(self) -> str: ...

    @property
    def store_id(self) -> str: ...

    @property
    def environments(self) -> builtins.list[str]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Facade: ...

    def __exit__(self, *exc: object) -> None: ...

    # -- credentials ------------------------------------------------------------------------

    def get(self, ref: str) -> Secret: ...

    def read(self, address: str) -> Credential: ...

    def describe(self, address: str) -> CredentialInfo: ...

    def show(self, address: str) -> tuple[CredentialInfo, builtins.list[VersionInfo]]: ...

    def list(
        self,
        *,
        env: str | None = None,
        service: str | None = None,
        kind: str | None = None,
        health: str | None = None,
    ) -> builtins.list[CredentialInfo]: ...

    def history(self, address: str) -> builtins.list[VersionInfo]: ...

    def add(
        self,
        address: str,
        kind: str,
        fields: Mapping[str, str | Secret],
        *,
        provider: str | None = None,
        description: str | None = None,
        owner: str | None = None,
        tags: Mapping[str, str] | None = None,
        links: Sequence[str] | None = None,
        expires_at: str | None = None,
        rotate_every: int | None = None,
    ) -> CredentialInfo: ...

    def update(
        self,
        address: str,
        *,
        fields: Mapping[str, str | Secret] | None = None,
        unset: Sequence[str] = (),
        expected_version: int | None = None,
        note: str = "updated",
        main: str | Secret | None = None,
        **metadata: Any,
    ) -> CredentialInfo: ...

    def rollback(
        self, address: str, to_version: int, *, expected_version: int | None = None
    ) -> CredentialInfo: ...

    def remove(
        self, address: str, *, expected_version: int | None = None, revoke: bool = True
    ) -> str | None: ...

    # -- environments, import, env vars -----------------------------------------------------

    def import_entries(
        self,
        entries: Sequence[tuple[str, str]],
        *,
        env: str,
        service: str,
        overwrite: bool = False,
    ) -> builtins.list[CredentialInfo]: ...

    def env_vars(self, *, env: str, only: Sequence[str] = ()) -> dict[str, Secret]: ...

    def add_environment(self, name: str) -> builtins.list[str]: ...

    def protected_environments(self) -> builtins.list[str]: ...

    def protect_environment(self, env: str, protected: bool = True) -> builtins.list[str]: ...

    # -- use: tokens, headers, live checks, OAuth ----------------------------------------------

    def access_token(
        self,
        address: str,
        *,
        scopes: Sequence[str] = (),
        subject: str | None = None,
        leeway: int = 60,
        rejected: Secret | None = None,
    ) -> Secret: ...

    def headers(self, address: str) -> dict[str, Secret]: ...

    def auth(self, address: str) -> Any: ...

    def test(
        self,
        address: str,
        *,
        template_vars: Mapping[str, str] | None = None,
        timeout: float = 15.0,
    ) -> Outcome: ...

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
    ) -> CredentialInfo: ...

    def connect_status(self, flow: str) -> dict[str, Any]: ...

    # -- access -----------------------------------------------------------------------------

    def whoami(self) -> dict[str, Any]: ...

    def add_principal(
        self,
        name: str,
        *,
        type: str = "workflow",
        owner: str | None = None,
        description: str | None = None,
        role: str | None = None,
        pattern: str = "*",
    ) -> PrincipalRecord: ...

    def principals(self) -> builtins.list[PrincipalRecord]: ...

    def principal_info(self, name: str) -> dict[str, Any]: ...

    def remove_principal(self, name: str) -> dict[str, int]: ...

    def issue_token(
        self, name: str, *, expires_in: int | None = None, description: str | None = None
    ) -> tuple[dict[str, Any], Secret]: ...

    def tokens(self, name: str | None = None) -> builtins.list[dict[str, Any]]: ...

    def revoke_token(self, token_id: str) -> dict[str, Any]: ...

    def grant(
        self,
        name: str,
        pattern: str,
        *,
        actions: str | Sequence[str] | None = None,
        role: str | None = None,
    ) -> Grant: ...

    def revoke_grant(
        self, name: str, pattern: str, *, actions: str | None = None
    ) -> Grant | None: ...

    def grants(self, name: str | None = None) -> builtins.list[Grant]: ...

    # -- reports ----------------------------------------------------------------------------

    def report_expiring(self, *, within: int) -> builtins.list[dict[str, Any]]: ...

    def report_rotation(self) -> builtins.list[dict[str, Any]]: ...

    def report_unused(self, *, days: int) -> builtins.list[dict[str, Any]]: ...

    def review_permissions(
        self, *, days: int = 90, principal: str | None = None, flagged: bool = False
    ) -> builtins.list[dict[str, Any]]: ...

    # -- audit and keys -------------------------------------------------------------------------

    def audit_events(
        self,
        *,
        address: str | None = None,
        principal: str | None = None,
        since: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[AuditEvent]: ...

    def verify_audit(self) -> VerifyReport: ...

    def rotate_key(
        self, *, progress: Callable[[int, int], None] | None = None, batch: int = 200
    ) -> dict[str, int]: ...


__all__ = ["Facade"]
