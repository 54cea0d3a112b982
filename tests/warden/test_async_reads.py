"""Reads from an event loop (the API's hot path): batched, each audited before it returns."""

from __future__ import annotations

import asyncio

import pytest

from credwarden import Warden
from credwarden.access.policy import Principal
from credwarden.errors import NotFound, PermissionDenied

ADDRS = [f"prod/svc{i}/key" for i in range(5)]


def seed(w: Warden) -> None:
    for i, a in enumerate(ADDRS):
        w.add(a, "api_key", {"api_key": f"value-{i}"})
    w.add_principal("wf", type="workflow")
    w.grant("wf", "prod/svc1/*", actions="read")


async def read_all(w: Warden) -> list[object]:
    async def one(addr: str, who: Principal | None) -> object:
        try:
            if who is None:
                return (await w.aread_values(addr))[1]
            with w.acting_as(who, client={"ip": "203.0.113.9"}):
                return (await w.aread_values(addr))[1]
        except (NotFound, PermissionDenied) as exc:
            return exc.code

    wf = Principal("wf", "workflow")
    calls = [one(a, None) for a in ADDRS * 6]  # 30 concurrent reads, one loop iteration
    calls += [one("prod/svc9/missing", None), one(ADDRS[1], wf), one(ADDRS[2], wf)]
    return list(await asyncio.gather(*calls))


def test_concurrent_async_reads_are_right_and_each_audited(warden: Warden) -> None:
    seed(warden)
    before = len(warden.audit_events())
    results = asyncio.run(read_all(warden))
    assert results[:30] == [{"api_key": f"value-{i}"} for i in range(5)] * 6
    assert results[30:] == ["not_found", {"api_key": "value-1"}, "permission_denied"]
    events = warden.audit_events()[before:]
    reads = [e for e in events if e.action == "read"]
    assert len(reads) == 33
    outcomes = sorted((e.principal, e.address, e.result) for e in reads)
    assert outcomes.count(("wf", ADDRS[2], "denied")) == 1
    assert outcomes.count(("wf", ADDRS[1], "ok")) == 1
    assert sum(1 for e in reads if e.result == "not_found") == 1
    assert all(e.client == {"ip": "203.0.113.9"} for e in reads if e.principal == "wf")
    assert warden.verify_audit().ok


def test_a_value_changed_between_batches_is_read_fresh(warden: Warden) -> None:
    seed(warden)

    async def read() -> object:
        return (await warden.aread_values(ADDRS[0]))[1]

    assert asyncio.run(read()) == {"api_key": "value-0"}
    warden.update(ADDRS[0], fields={"api_key": "value-0b"})
    assert asyncio.run(read()) == {"api_key": "value-0b"}


@pytest.mark.parametrize("field", [None, "api_key"])
def test_aget_field_names_the_field(warden: Warden, field: str | None) -> None:
    seed(warden)
    ref = ADDRS[3] if field is None else f"{ADDRS[3]}#{field}"
    assert asyncio.run(warden.aget_field(ref)) == ("api_key", "value-3")
