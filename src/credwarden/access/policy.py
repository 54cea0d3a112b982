"""The access check the facade makes before every operation (grants arrive with the server)."""

from __future__ import annotations

import os
from typing import Final, NamedTuple, Protocol

ACTIONS: Final = ("describe", "use", "read", "write", "rotate", "admin")


class Principal(NamedTuple):
    name: str
    type: str = "user"
    owner: bool = False
    """The local holder of the master key: may do everything."""


class Policy(Protocol):
    def allows(self, principal: Principal, action: str, address: str | None) -> bool: ...


class OwnerPolicy:
    """Until grants exist: the master-key holder may do everything, anyone else nothing."""

    def allows(self, principal: Principal, action: str, address: str | None) -> bool:
        return principal.owner


def local_principal() -> Principal:
    """The OS user running this process, who holds the master key."""
    try:
        import pwd

        user = pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        user = os.environ.get("USERNAME") or os.environ.get("USER") or "unknown"
    return Principal(f"local:{user}", "user", owner=True)
