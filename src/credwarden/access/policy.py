"""The access check the facade makes before every operation: deny unless a grant allows it."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Protocol

from ..operation import Principal
from .grants import ACTIONS, required_action

if TYPE_CHECKING:
    from .state import AccessCache


class Policy(Protocol):
    def allows(self, principal: Principal, action: str, address: str | None) -> bool: ...


class GrantPolicy:
    """Root may do everything; anyone else what their grants allow (deny by default)."""

    def __init__(self, access: AccessCache) -> None:
        self.access = access

    def allows(self, principal: Principal, action: str, address: str | None) -> bool:
        if principal.root:
            return True
        needed = required_action(action)
        if needed is None:
            return False
        return self.access.current().grants_index.allows(principal.name, needed, address)


def local_principal() -> Principal:
    """The OS user running this process, who holds the master key."""
    try:
        import pwd

        user = pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        user = os.environ.get("USERNAME") or os.environ.get("USER") or "unknown"
    return Principal(f"local:{user}", "user", root=True)


__all__ = ["ACTIONS", "GrantPolicy", "Policy", "Principal", "local_principal"]
