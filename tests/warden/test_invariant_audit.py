"""Invariant 2: every operation, allowed, failed or denied, leaves exactly one audit event; the
chain verifies; any edit or deletion of an event is detected. A read that cannot be audited
fails, and a write whose event cannot be written is rolled back."""

from __future__ import annotations

import json
import os
import pwd
from collections.abc import Callable
from typing import Any

import pytest

from credwarden import (
    AuditError,
    CredwardenError,
    NotFound,
    PermissionDenied,
    Warden,
)
from credwarden.access.policy import Principal
from credwarden.errors import AlreadyExists, Conflict, CryptoError, UsageError
from credwarden.store.base import AUDIT_HEAD_SEQ as HEAD
from tests.rawdb import (
    audit_columns,
    break_audit,
    count_events,
    durable_records,
    events_after,
    is_sqlite,
    max_seq,
    raw,
    repair_audit,
    snapshot,
)

PRINCIPAL = f"local:{pwd.getpwuid(os.getuid()).pw_name}"
HOST = os.uname().nodename
A = "prod/stripe/billing"


class DenyAll:
    def allows(self, principal: Principal, action: str, address: str | None) -> bool:
        return False


class DenyProdReads:
    def allows(self, principal: Principal, action: str, address: str | None) -> bool:
        return not (action in ("read", "use") and address is not None and address[:5] == "prod/")


def one_event(url: str, op: Callable[[], Any]) -> tuple[Any, dict[str, Any]]:
    """Run `op` (it may raise a CredwardenError) and return its result and its one event."""
    before = max_seq(url)
    result: Any
    try:
        result = op()
    except CredwardenError as exc:
        result = exc
    events = events_after(url, before)
    assert len(events) == 1, [(e["action"], e["result"]) for e in events]
    return result, events[0]


def check_event(
    event: dict[str, Any],
    action: str,
    address: str | None,
    result: str,
    version: int | None = None,
    source: str = "sdk",
) -> None:
    assert event["action"] == action
    assert event["address"] == address
    assert event["result"] == result
    assert event["version"] == version
    assert event["principal"] == PRINCIPAL
    assert event["source"] == source
    assert event["host"] == HOST
    assert event["pid"] == os.getpid()
    assert event["ts"].endswith("Z")


def seed(w: Warden) -> None:
    w.add(A, "api_key", {"api_key": "k1"})
    w.add("prod/db/main", "basic", {"username": "u", "password": "p"})
    w.add("dev/misc/token", "secret", {"value": "t"})


# -- allowed operations --------------------------------------------------------------------------


def test_every_operation_leaves_one_event(warden: Warden, database_url: str) -> None:
    url = database_url
    _, e = one_event(url, lambda: warden.add(A, "api_key", {"api_key": "k1"}))
    check_event(e, "write", A, "ok", 1)
    assert e["detail"] == {"kind": "api_key", "fields": ["api_key"]}

    value, e = one_event(url, lambda: warden.get(A))
    assert value.reveal() == "k1"
    check_event(e, "read", A, "ok", 1)
    assert e["detail"]["field"] == "api_key"

    _, e = one_event(url, lambda: warden.get(f"{A}#api_key"))
    check_event(e, "read", A, "ok", 1)
    _, e = one_event(url, lambda: warden.read(A))
    check_event(e, "read", A, "ok", 1)
    _, e = one_event(url, lambda: warden.headers(A))
    check_event(e, "read", A, "ok", 1)  # a static key in a header is the key itself
    _, e = one_event(url, lambda: warden.describe(A))
    check_event(e, "describe", A, "ok", 1)
    _, e = one_event(url, lambda: warden.history(A))
    check_event(e, "history", A, "ok", 1)
    _, e = one_event(url, lambda: warden.list())
    check_event(e, "list", None, "ok")
    assert e["detail"]["count"] == 1
    _, e = one_event(url, lambda: warden.update(A, fields={"api_key": "k2"}))
    check_event(e, "write", A, "ok", 2)
    _, e = one_event(url, lambda: warden.update(A, description="metadata only"))
    check_event(e, "write", A, "ok", 2)
    _, e = one_event(url, lambda: warden.rollback(A, 1))
    check_event(e, "write", A, "ok", 3)
    assert e["detail"]["from_version"] == 1
    _, e = one_event(url, lambda: warden.add_environment("qa"))
    check_event(e, "admin", None, "ok")
    _, e = one_event(url, lambda: warden.audit_events())
    check_event(e, "audit.read", None, "ok")
    report, e = one_event(url, lambda: warden.verify_audit())
    assert report.ok
    check_event(e, "audit.verify", None, "ok")
    _, e = one_event(url, lambda: warden.import_entries([("ONE", "1")], env="dev", service="imp"))
    check_event(e, "write", "dev/imp/one", "ok", 1)
    assert e["detail"]["via"] == "import"
    _, e = one_event(url, lambda: warden.env_vars(env="dev"))
    check_event(e, "read", "dev/imp/one", "ok", 1)
    assert e["detail"]["vars"] == ["ONE"]
    _, e = one_event(url, lambda: warden.remove(A))
    check_event(e, "delete", A, "ok", 3)

    # Batches: one event per credential touched.
    before = max_seq(url)
    warden.import_entries([("TWO", "2"), ("THREE", "3")], env="dev", service="imp")
    assert [(x["action"], x["address"]) for x in events_after(url, before)] == [
        ("write", "dev/imp/two"),
        ("write", "dev/imp/three"),
    ]
    before = max_seq(url)
    warden.env_vars(env="dev")
    assert sorted(x["address"] for x in events_after(url, before)) == [
        "dev/imp/one",
        "dev/imp/three",
        "dev/imp/two",
    ]
    # A key rotation records its start and its end.
    before = max_seq(url)
    warden.rotate_key()
    assert [x["action"] for x in events_after(url, before)] == ["key.rotate", "key.rewrap"]

    # The source of a Warden is recorded as given.
    with Warden.open(database_url=url, source="scheduler") as other:
        _, e = one_event(url, lambda: other.describe("dev/imp/one"))
    check_event(e, "describe", "dev/imp/one", "ok", 1, source="scheduler")
    assert warden.verify_audit().ok


def test_failed_operations_leave_one_event(warden: Warden, database_url: str) -> None:
    url = database_url
    seed(warden)
    missing = "prod/nope/missing"
    for action, address, op in (
        ("read", missing, lambda: warden.get(missing)),
        ("read", A, lambda: warden.get(f"{A}#env_var")),
        ("read", missing, lambda: warden.read(missing)),
        ("read", missing, lambda: warden.headers(missing)),
        ("describe", missing, lambda: warden.describe(missing)),
        ("history", missing, lambda: warden.history(missing)),
        ("write", missing, lambda: warden.update(missing, description="x")),
        ("write", missing, lambda: warden.rollback(missing, 1)),
        ("write", A, lambda: warden.rollback(A, 7)),
        ("delete", missing, lambda: warden.remove(missing)),
    ):
        exc, e = one_event(url, op)
        assert isinstance(exc, NotFound), exc
        version = e["version"] if address == A else None
        check_event(e, action, address, "not_found", version)
        assert e["detail"]["error"] == "not_found"

    for action, address, op in (
        ("write", A, lambda: warden.add(A, "secret", {"value": "x"})),
        ("write", A, lambda: warden.update(A, fields={"api_key": "z"}, expected_version=5)),
        ("write", A, lambda: warden.rollback(A, 1, expected_version=5)),
        ("delete", A, lambda: warden.remove(A, expected_version=5)),
        ("admin", None, lambda: warden.add_environment("dev")),
    ):
        exc, e = one_event(url, op)
        assert isinstance(exc, Conflict), exc
        check_event(e, action, address, "conflict")
        assert e["detail"]["error"] in ("conflict", "already_exists")

    # A record that fails to decrypt: an error, audited as such.
    with raw(url) as db:
        (b1, k1), (b2, k2) = db.execute(
            "SELECT body, key FROM records WHERE ns = 'ver' ORDER BY key LIMIT 2"
        )
        db.execute("UPDATE records SET body = ? WHERE ns = 'ver' AND key = ?", (b2, k1))
        db.execute("UPDATE records SET body = ? WHERE ns = 'ver' AND key = ?", (b1, k2))
    errors = 0
    for address in (A, "prod/db/main", "dev/misc/token"):
        exc, e = one_event(url, lambda address=address: warden.read(address))
        if isinstance(exc, CryptoError):
            errors += 1
            check_event(e, "read", address, "error", e["version"])
            assert e["detail"]["error"] == "crypto"
        else:
            check_event(e, "read", address, "ok", 1)
    assert errors == 2
    assert warden.verify_audit().ok


def test_refused_import_leaves_an_event(warden: Warden, database_url: str) -> None:
    warden.add("dev/imp/one", "secret", {"value": "1"})
    before = max_seq(database_url)
    with pytest.raises(AlreadyExists):
        warden.import_entries([("ONE", "2")], env="dev", service="imp")
    events = events_after(database_url, before)
    assert [(e["action"], e["address"], e["result"]) for e in events] == [
        ("write", "dev/imp/one", "conflict")
    ]


# -- denied operations ---------------------------------------------------------------------------


def test_denied_operations_leave_one_denied_event(warden: Warden, database_url: str) -> None:
    url = database_url
    seed(warden)
    before_rows = durable_records(url)
    with Warden.open(database_url=url, policy=DenyAll(), source="untrusted") as w:
        ops: list[tuple[str, str | None, Callable[[], Any]]] = [
            ("read", A, lambda: w.get(A)),
            ("read", A, lambda: w.get(f"{A}#api_key")),
            ("read", A, lambda: w.read(A)),
            ("read", A, lambda: w.headers(A)),
            ("describe", A, lambda: w.describe(A)),
            ("history", A, lambda: w.history(A)),
            ("write", "dev/new/one", lambda: w.add("dev/new/one", "secret", {"value": "x"})),
            ("write", A, lambda: w.update(A, fields={"api_key": "evil"})),
            ("write", A, lambda: w.update(A, description="evil")),
            ("write", A, lambda: w.rollback(A, 1)),
            ("delete", A, lambda: w.remove(A)),
            ("list", None, lambda: w.list()),
            ("admin", None, lambda: w.add_environment("qa")),
            ("audit.read", None, lambda: w.audit_events()),
            ("audit.verify", None, lambda: w.verify_audit()),
            ("key.rotate", None, lambda: w.rotate_key()),
            (
                "write",
                "dev/imp/x",
                lambda: w.import_entries([("X", "1")], env="dev", service="imp"),
            ),
            # Denied whether or not the credential exists: a denial reveals nothing.
            ("read", "prod/nope/missing", lambda: w.get("prod/nope/missing")),
        ]
        for action, address, op in ops:
            exc, e = one_event(url, op)
            assert isinstance(exc, PermissionDenied), (action, exc)
            assert exc.exit_code == 5 and exc.code == "permission_denied"
            assert exc.hint is None or isinstance(exc.hint, str)
            check_event(e, action, address, "denied", source="untrusted")
    assert durable_records(url) == before_rows
    assert warden.get(A).reveal() == "k1"
    assert warden.verify_audit().ok


def test_partial_policy(warden: Warden, database_url: str) -> None:
    seed(warden)
    with Warden.open(database_url=database_url, policy=DenyProdReads()) as w:
        exc, e = one_event(database_url, lambda: w.get(A))
        assert isinstance(exc, PermissionDenied)
        check_event(e, "read", A, "denied")
        _, e = one_event(database_url, lambda: w.describe(A))
        check_event(e, "describe", A, "ok", 1)
        value, e = one_event(database_url, lambda: w.get("dev/misc/token"))
        assert value.reveal() == "t"
        check_event(e, "read", "dev/misc/token", "ok", 1)
        assert [i.address for i in w.list(env="prod")] == ["prod/db/main", A]


# -- bad input: no event at all ------------------------------------------------------------------


def test_invalid_input_leaves_no_event_and_changes_nothing(
    warden: Warden, database_url: str
) -> None:
    seed(warden)
    warden.add("dev/app/env", "env", {"ONE": "1", "TWO": "2"})
    before = snapshot(database_url)
    bad_addresses = ["Prod/stripe/billing", "prod/stripe", "prod//x", "prod/a b/c", "../x/y", ""]
    ops: list[Callable[[], Any]] = []
    for bad in bad_addresses:
        ops += [
            lambda bad=bad: warden.get(bad),
            lambda bad=bad: warden.read(bad),
            lambda bad=bad: warden.describe(bad),
            lambda bad=bad: warden.history(bad),
            lambda bad=bad: warden.headers(bad),
            lambda bad=bad: warden.remove(bad),
            lambda bad=bad: warden.rollback(bad, 1),
            lambda bad=bad: warden.update(bad, description="x"),
            lambda bad=bad: warden.add(bad, "secret", {"value": "x"}),
            lambda bad=bad: warden.audit_events(address=bad),
        ]
    ops += [
        lambda: warden.get(f"{A}#bad field"),
        lambda: warden.get(f"{A}#"),
        lambda: warden.get("dev/app/env"),  # several fields: name one
        lambda: warden.add("dev/x/y", "nokind", {"value": "x"}),
        lambda: warden.add("dev/x/y", "secret", {"nofield": "x"}),
        lambda: warden.add("dev/x/y", "api_key", {"api_key": "a b"}),
        lambda: warden.add("qa/x/y", "secret", {"value": "x"}),
        lambda: warden.update(A, fields={"api_key": "with space"}),
        lambda: warden.update(A, fields={"nofield": "x"}),
        lambda: warden.update(A, unset=["header"]),
        lambda: warden.update(A, tags={"Bad Key": "x"}),
        lambda: warden.update(A),
        lambda: warden.rollback(A, 1),  # already current
        lambda: warden.headers("dev/misc/token"),  # a secret has no headers
        lambda: warden.list(env="Bad"),
        lambda: warden.list(kind="nokind"),
        lambda: warden.env_vars(env="Bad"),
        lambda: warden.import_entries([("OK", "1"), ("1BAD", "2")], env="dev", service="imp"),
        lambda: warden.add_environment("Bad Env"),
    ]
    for op in ops:
        with pytest.raises(UsageError) as exc:
            op()
        assert exc.value.exit_code == 2
        assert exc.value.message
    assert snapshot(database_url) == before


# -- an unwritable audit log ---------------------------------------------------------------------


def test_unauditable_reads_fail_and_writes_roll_back(warden: Warden, database_url: str) -> None:
    url = database_url
    seed(warden)
    warden.describe(A)  # let any lazily kept state settle before the snapshot
    before = snapshot(url)
    before_records = durable_records(url)
    n = count_events(url)
    break_audit(url)
    try:
        for op in (
            lambda: warden.get(A),
            lambda: warden.get(f"{A}#api_key"),
            lambda: warden.read(A),
            lambda: warden.headers(A),
            lambda: warden.describe(A),
            lambda: warden.history(A),
            lambda: warden.list(),
            lambda: warden.audit_events(),
            lambda: warden.verify_audit(),
            lambda: warden.get("prod/nope/missing"),
            lambda: warden.add("dev/new/one", "secret", {"value": "x"}),
            lambda: warden.update(A, fields={"api_key": "k2"}),
            lambda: warden.update(A, description="changed"),
            lambda: warden.remove("prod/db/main"),
            lambda: warden.add_environment("qa"),
            lambda: warden.add(A, "secret", {"value": "x"}),
        ):
            returned: Any = None
            with pytest.raises(AuditError) as exc:
                returned = op()
            assert returned is None
            assert exc.value.exit_code == 8 and exc.value.code == "audit_failed"
            assert exc.value.hint
        assert count_events(url) == n
    finally:
        repair_audit(url)
    after = snapshot(url)
    assert after["audit_events"] == before["audit_events"]
    assert after["audit_head"] == before["audit_head"]
    assert durable_records(url) == before_records
    with pytest.raises(NotFound):
        warden.describe("dev/new/one")
    assert warden.get(A).reveal() == "k1"
    info = warden.describe(A)
    assert info.version == 1 and info.description is None
    assert warden.get("prod/db/main").reveal() == "p"
    assert "qa" not in warden.environments
    assert warden.verify_audit().ok


@pytest.mark.parametrize(
    "database_url",
    [
        pytest.param("sqlite"),
        "postgres",
    ],
    indirect=True,
)
def test_unauditable_env_vars_and_import_raise_audit_error(
    warden: Warden, database_url: str
) -> None:
    seed(warden)
    break_audit(database_url)
    try:
        with pytest.raises(AuditError) as exc:
            warden.env_vars(env="prod")
        assert exc.value.exit_code == 8
        with pytest.raises(AuditError):
            warden.import_entries([("NEW", "x")], env="dev", service="imp")
    finally:
        repair_audit(database_url)
    with pytest.raises(NotFound):
        warden.describe("dev/imp/new")


def test_failed_rotation_leaves_the_keyring_alone(
    warden: Warden, database_url: str, open_warden: Callable[..., Warden]
) -> None:
    seed(warden)
    break_audit(database_url)
    try:
        with pytest.raises(AuditError):
            warden.rotate_key()
    finally:
        repair_audit(database_url)
    with raw(database_url) as db:
        assert db.execute("SELECT count(*) FROM records WHERE ns = 'kek'")[0][0] == 1
    warden.add("dev/after/rotation", "secret", {"value": "written after"})
    other = open_warden()
    assert other.get("dev/after/rotation").reveal() == "written after"


# -- tampering -----------------------------------------------------------------------------------


def _events(w: Warden) -> None:
    seed(w)
    for _ in range(3):
        w.get(A)
    w.update(A, fields={"api_key": "k2"})
    w.describe("prod/db/main")
    w.list()


def _tamper_body(db: Any, cols: list[str], mid: int, last: int) -> int:
    ((body,),) = db.execute("SELECT body FROM audit_events WHERE seq = ?", (mid,))
    event = json.loads(body)
    event["principal"] = "local:mallory"
    forged = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    db.execute("UPDATE audit_events SET body = ? WHERE seq = ?", (forged, mid))
    return mid


def _tamper_body_whitespace(db: Any, cols: list[str], mid: int, last: int) -> int:
    ((body,),) = db.execute("SELECT body FROM audit_events WHERE seq = ?", (mid,))
    db.execute("UPDATE audit_events SET body = ? WHERE seq = ?", (body + " ", mid))
    return mid


def _tamper_column(db: Any, cols: list[str], mid: int, last: int) -> int:
    """The stored chain hash itself edited (the body untouched)."""
    db.execute("UPDATE audit_events SET hash = ? WHERE seq = ?", ("f" * 64, mid))
    return mid


def _delete_middle(db: Any, cols: list[str], mid: int, last: int) -> int:
    db.execute("DELETE FROM audit_events WHERE seq = ?", (mid,))
    return mid


def _swap(db: Any, cols: list[str], mid: int, last: int) -> int:
    db.execute("UPDATE audit_events SET seq = -1 WHERE seq = ?", (mid,))
    db.execute("UPDATE audit_events SET seq = ? WHERE seq = ?", (mid, mid + 1))
    db.execute("UPDATE audit_events SET seq = ? WHERE seq = -1", (mid + 1,))
    return mid


def _delete_last(db: Any, cols: list[str], mid: int, last: int) -> int:
    db.execute("DELETE FROM audit_events WHERE seq = ?", (last,))
    return last


def _delete_last_fix_head(db: Any, cols: list[str], mid: int, last: int) -> int:
    ((prev_hash,),) = db.execute("SELECT hash FROM audit_events WHERE seq = ?", (last - 1,))
    db.execute("DELETE FROM audit_events WHERE seq = ?", (last,))
    ((mac,),) = db.execute("SELECT hash FROM audit_events WHERE seq = ?", (HEAD,))
    db.execute(
        "UPDATE audit_events SET body = ?, hash = ? WHERE seq = ?",
        (f"{last - 1} {prev_hash}", mac, HEAD),
    )
    return last - 1


def _delete_all(db: Any, cols: list[str], mid: int, last: int) -> int:
    db.execute("DELETE FROM audit_events")
    return 1


def _forge_append(db: Any, cols: list[str], mid: int, last: int) -> int:
    ((body,),) = db.execute("SELECT body FROM audit_events WHERE seq = ?", (last,))
    event = json.loads(body)
    event["seq"] = last + 1
    values = {c: None for c in cols}
    values.update(seq=last + 1, body=json.dumps(event, sort_keys=True), hash="0" * 64)
    for c in ("ts", "principal", "action", "address", "result", "prev_hash"):
        if c in values:
            values[c] = event.get(c, "x")
    db.execute(
        f"INSERT INTO audit_events ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
        [values[c] for c in cols],
    )
    return last + 1


TAMPERS = {
    "edit_body": _tamper_body,
    "edit_body_whitespace": _tamper_body_whitespace,
    "edit_indexed_column": _tamper_column,
    "delete_middle": _delete_middle,
    "swap_seq": _swap,
    "delete_last": _delete_last,
    "delete_last_fix_head": _delete_last_fix_head,
    "delete_all": _delete_all,
    "forge_append": _forge_append,
}


@pytest.mark.parametrize("tamper", sorted(TAMPERS))
def test_tampering_is_detected(warden: Warden, database_url: str, tamper: str) -> None:
    _events(warden)
    cols = audit_columns(database_url)
    last = max_seq(database_url)
    mid = last // 2
    assert mid > 2
    with raw(database_url) as db:
        bad = TAMPERS[tamper](db, cols, mid, last)
    if tamper == "forge_append":
        # The next append collides with the forged row: every operation fails closed, and the
        # verification (which cannot record itself) still names the forged event.
        with pytest.raises(AuditError):
            warden.get(A)
        report = warden.verify_audit()
        assert not report.ok and report.first_bad_seq == bad, report
        with raw(database_url) as db:
            db.execute("DELETE FROM audit_events WHERE seq = ?", (bad,))
        assert warden.verify_audit().ok
        return
    report = warden.verify_audit()
    assert not report.ok
    assert report.first_bad_seq == bad, report
    assert report.reason
    assert report.checked < last + 1


def test_intact_log_verifies(warden: Warden, database_url: str) -> None:
    report = warden.verify_audit()
    assert report.ok and report.checked == 1  # the init event
    _events(warden)
    n = count_events(database_url)
    report = warden.verify_audit()
    assert report.ok
    assert report.checked == n
    assert report.first_bad_seq is None and report.reason is None
    # The verification itself is recorded, and the log still verifies after it.
    assert count_events(database_url) == n + 1
    assert warden.verify_audit().checked == n + 1
    events = warden.audit_events()
    assert [e.seq for e in events] == list(range(1, n + 3))
    assert events[0].action == "init"
    assert [e.seq for e in warden.audit_events(limit=2)] == [n + 2, n + 3]
    assert all(e.address == A for e in warden.audit_events(address=A))
    assert is_sqlite(database_url) or database_url.startswith("postgresql://")
