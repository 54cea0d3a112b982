"""The hot path's answer to a bug: the one error shape, 500, and never the exception's text."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from .conftest import Api

CANARY = "internal-canary-7f3a"


def test_an_unexpected_error_is_a_plain_500(
    api: Api, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(address: str) -> tuple[int, dict[str, str]]:
        raise RuntimeError(CANARY)

    monkeypatch.setattr(api.warden, "aread_values", broken)
    resp = client.get("/v1/credentials/prod/stripe/billing/value", headers=api.auth("runner-p"))
    assert resp.status_code == 500
    assert resp.json()["code"] == "internal"
    assert CANARY not in resp.text
