"""`audit` queries and `audit verify`."""

from __future__ import annotations

import json
import sqlite3

from .conftest import CLI


def test_audit_shows_reads_and_filters(store: CLI) -> None:
    assert store("get", "dev/stripe/billing").code == 0
    events = json.loads(store("audit", "--json").out)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    reads = [e for e in events if e["action"] == "read"]
    assert reads[-1]["address"] == "dev/stripe/billing"
    assert reads[-1]["source"] == "cli"
    assert reads[-1]["result"] == "ok"

    only = json.loads(store("audit", "--address", "dev/stripe/billing", "--json").out)
    assert {e["address"] for e in only} == {"dev/stripe/billing"}
    last = json.loads(store("audit", "--limit", "2", "--json").out)
    assert len(last) == 2 and last[0]["seq"] < last[1]["seq"]
    assert json.loads(store("audit", "--principal", "nobody", "--json").out) == []

    table = store("audit")
    assert table.out.splitlines()[0].split() == [
        "SEQ", "TIME", "PRINCIPAL", "ACTION", "ADDRESS", "VERSION", "RESULT",
    ]  # fmt: skip
    assert "read" in table.out


def test_audit_since(store: CLI) -> None:
    recent = json.loads(store("audit", "--since", "1h", "--json").out)
    assert recent and recent[0]["seq"] == 1
    assert json.loads(store("audit", "--since", "2999-01-01", "--json").out) == []
    assert len(json.loads(store("audit", "--since", "2000-01-01T00:00:00Z", "--json").out)) > 2
    assert store("audit", "--since", "yesterday").code == 2
    assert store("audit", "--limit", "0").code == 2


def test_audit_verify_detects_tampering(store: CLI) -> None:
    ok = store("audit", "verify")
    assert ok.code == 0
    assert ok.out.startswith("audit log intact: ")
    assert json.loads(store("audit", "verify", "--json").out)["ok"] is True

    with sqlite3.connect(store.home / "credwarden.db") as db:
        (body,) = db.execute("SELECT body FROM audit_events WHERE seq = 2").fetchone()
        db.execute(
            "UPDATE audit_events SET body = ? WHERE seq = 2",
            (body.replace('"write"', '"describe"'),),
        )
    db.close()
    bad = store("audit", "verify")
    assert bad.code == 1
    assert bad.out.startswith("audit log TAMPERED: first bad event 2: ")
    report = json.loads(store("audit", "verify", "--json").out)
    assert (report["ok"], report["first_bad_seq"]) == (False, 2)
    assert store.sh("audit", "verify").code == 1
