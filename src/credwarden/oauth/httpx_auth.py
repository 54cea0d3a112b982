"""`w.auth(address)`: an httpx.Auth that sends a fresh token and, on a 401, refreshes once and
retries once (the token may have been revoked or rotated early by the provider)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Protocol

import httpx

from ..secret import Secret


class TokenSource(Protocol):
    """What the auth needs: the facade's `access_token` (local or remote)."""

    def access_token(self, address: str, *, rejected: Secret | None = None) -> Secret: ...


class WardenAuth(httpx.Auth):
    def __init__(self, warden: TokenSource, address: str) -> None:
        self._warden = warden
        self._address = address

    def __repr__(self) -> str:
        return f"WardenAuth({self._address!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._warden.access_token(self._address)
        request.headers["Authorization"] = f"Bearer {token.reveal()}"
        response = yield request
        if response.status_code == 401:
            token = self._warden.access_token(self._address, rejected=token)
            request.headers["Authorization"] = f"Bearer {token.reveal()}"
            yield request
