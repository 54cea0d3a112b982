"""Bearer-token authentication of API calls, and the brake on failed attempts per source."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, NamedTuple

from ..access.policy import Principal
from ..errors import RateLimited, Unauthenticated
from ..warden import Warden

MAX_FAILURES = 10
WINDOW_S = 60.0


class ApiCaller(NamedTuple):
    principal: Principal
    client: dict[str, Any]


class FailureBrake:
    """After MAX_FAILURES failed authentications from one address within WINDOW_S seconds, that
    address is refused (429) until the window has passed: guessing tokens gets nowhere, and
    the audit log records the lock-out once instead of every guess."""

    def __init__(self, max_failures: int = MAX_FAILURES, window: float = WINDOW_S) -> None:
        self.max_failures = max_failures
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def blocked(self, ip: str) -> bool:
        with self._lock:
            q = self._failures.get(ip)
            if not q:
                return False
            cutoff = time.monotonic() - self.window
            while q and q[0] < cutoff:
                q.popleft()
            if not q:
                del self._failures[ip]
            return len(q) >= self.max_failures

    def failed(self, ip: str) -> bool:
        """Record a failure; True when this one reaches the limit (audit the lock-out)."""
        with self._lock:
            if len(self._failures) > 100_000:  # bounded memory under a spray of sources:
                for old in list(self._failures)[:10_000]:  # drop the longest-tracked
                    del self._failures[old]
            q = self._failures.setdefault(ip, deque())
            q.append(time.monotonic())
            return len(q) == self.max_failures


def bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def client_info(ip: str, user_agent: str | None) -> dict[str, Any]:
    """What the audit log records of where a request came from."""
    client: dict[str, Any] = {"ip": ip}
    if user_agent:
        client["user_agent"] = user_agent[:200]
    return client


def remembered(
    warden: Warden, header: str | None, ip: str, user_agent: str | None
) -> ApiCaller | None:
    """The caller of a request whose token was verified against the current access state,
    from memory alone (no store read): None when it must be checked in full."""
    token = bearer(header)
    principal = warden.remembered(token) if token else None
    if principal is None:
        return None
    assert token is not None
    client = client_info(ip, user_agent)
    client["token"] = token[4:16]
    return ApiCaller(principal, client)


def authenticate(
    warden: Warden, brake: FailureBrake, header: str | None, ip: str, user_agent: str | None
) -> ApiCaller:
    """The caller of a request, or Unauthenticated (401) / RateLimited (429)."""
    client = client_info(ip, user_agent)
    token = bearer(header)
    # A valid token always gets in: the brake only refuses the failures of a source that
    # failed too often (behind a proxy many clients share one address).
    blocked = brake.blocked(ip)
    try:
        # A request without a token is audited as well (reason "missing"), and counts
        # towards the source's brake like a bad token; a braked source is not audited per
        # attempt (its lock-out was, once).
        principal = warden.authenticate(token or "", client=client, audit=not blocked)
    except Unauthenticated:
        if blocked:
            raise RateLimited(
                f"too many failed authentications from {ip}",
                hint=f"wait {int(brake.window)} s and use a valid token",
            ) from None
        if brake.failed(ip):
            warden.note_lockout(ip, client)
        if token is None:
            raise Unauthenticated(
                "this route needs an API token",
                hint="send `Authorization: Bearer TOKEN` (credwarden principal token NAME)",
            ) from None
        raise
    assert token is not None
    client["token"] = token[4:16]  # the token's id (never its secret)
    return ApiCaller(principal, client)
