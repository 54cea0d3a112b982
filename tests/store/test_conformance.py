"""The storage contract, run against every backend: CAS records, the audit log, migrations."""

from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
import os
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credwarden.errors import AlreadyExists, Conflict, SchemaTooNew, StoreError
from credwarden.store import AuditHead, AuditRow, Record, Store, migrate, open_store

NS = "t"
CANARY = "CANARY-5e1f-store-secret"
_fixture_reuse = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40, deadline=None
)
_unique = itertools.count()


@contextmanager
def opened(url: str, *, create: bool = True) -> Iterator[Store]:
    s = open_store(url, create=create)
    try:
        yield s
    finally:
        s.close()


def raw_sql(url: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement with the backend's own driver, behind the store's back."""
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url[len("sqlite:///") :])
        try:
            rows = conn.execute(statement, params).fetchall()
            conn.commit()
        finally:
            conn.close()
        return rows
    import psycopg

    with psycopg.connect(url, autocommit=True) as pg:
        cur = pg.execute(statement.replace("?", "%s"), params)
        return cur.fetchall() if cur.description else []


def put(store: Store, key: str, body: bytes, rev: int = 0, ns: str = NS) -> int:
    with store.transaction() as tx:
        return tx.put(ns, key, body, rev=rev)


def get(store: Store, key: str, ns: str = NS) -> Record | None:
    with store.transaction(write=False) as tx:
        return tx.get(ns, key)


def keys(store: Store, prefix: str = "", ns: str = NS) -> list[str]:
    with store.transaction(write=False) as tx:
        return [r.key for r in tx.list(ns, prefix)]


# -- records ------------------------------------------------------------------


def test_get_missing_is_none(store: Store) -> None:
    assert get(store, "nothing/here") is None


def test_put_creates_at_rev_1_and_updates_bump_the_rev(store: Store) -> None:
    assert put(store, "a", b"one") == 1
    assert get(store, "a") == Record("a", 1, b"one")
    assert put(store, "a", b"two", rev=1) == 2
    assert put(store, "a", b"three", rev=2) == 3
    assert get(store, "a") == Record("a", 3, b"three")


def test_put_rev_0_on_an_existing_record_is_already_exists(store: Store) -> None:
    put(store, "a", b"first")
    with pytest.raises(AlreadyExists):
        put(store, "a", b"second")
    assert get(store, "a") == Record("a", 1, b"first")


def test_put_with_a_stale_rev_conflicts(store: Store) -> None:
    put(store, "a", b"v1")
    put(store, "a", b"v2", rev=1)
    with pytest.raises(Conflict) as info:
        put(store, "a", b"stale", rev=1)
    assert not isinstance(info.value, AlreadyExists)
    with pytest.raises(Conflict):
        put(store, "a", b"future", rev=7)
    assert get(store, "a") == Record("a", 2, b"v2")


def test_put_with_a_rev_on_a_missing_record_conflicts(store: Store) -> None:
    with pytest.raises(Conflict):
        put(store, "ghost", b"x", rev=1)
    assert get(store, "ghost") is None


def test_delete_needs_the_current_rev(store: Store) -> None:
    put(store, "a", b"v1")
    put(store, "a", b"v2", rev=1)
    with pytest.raises(Conflict), store.transaction() as tx:
        tx.delete(NS, "a", rev=1)
    assert get(store, "a") == Record("a", 2, b"v2")
    with store.transaction() as tx:
        tx.delete(NS, "a", rev=2)
    assert get(store, "a") is None
    with pytest.raises(Conflict), store.transaction() as tx:
        tx.delete(NS, "a", rev=2)
    assert put(store, "a", b"again") == 1  # a deleted key starts over


def test_namespaces_are_separate(store: Store) -> None:
    put(store, "k", b"in-a", ns="a")
    put(store, "k", b"in-b", ns="b")
    assert get(store, "k", ns="a") == Record("k", 1, b"in-a")
    assert get(store, "k", ns="b") == Record("k", 1, b"in-b")
    assert keys(store, ns="a") == ["k"]
    assert get(store, "k", ns="c") is None


def test_list_prefix_boundaries(store: Store) -> None:
    under_prod_slash = ["prod/", "prod/a", "prod/b/c", "prod/\uffff"]
    under_prod = [*under_prod_slash, "prod", "prod0", "prod2/x", "prod.x", "prodz"]
    for k in [*under_prod, "pro", "Prod/a", "staging/a"]:
        put(store, k, k.encode())
    assert keys(store, "prod/") == under_prod_slash
    assert keys(store, "prod/b") == ["prod/b/c"]
    assert keys(store, "prod") == sorted(under_prod)
    assert keys(store, "nothing") == []
    assert keys(store, "prod/b/c/") == []
    with store.transaction(write=False) as tx:
        assert [(r.key, r.body) for r in tx.list(NS, "prod/a")] == [("prod/a", b"prod/a")]


def test_list_orders_by_code_point(store: Store) -> None:
    names = ["b", "a", "B", "_", "a/b", "a-b", "a0", "a b", "~", "Z", "z", "A/\u00e9"]
    names += ["\u00e9", "\u00ff", "\u4e2d", "\U0001f600", "\ufb01"]  # beyond ASCII and the BMP
    for k in names:
        put(store, k, b"")
    assert keys(store) == sorted(names)
    assert keys(store, "a") == sorted(k for k in names if k.startswith("a"))


key_text = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00\U0010ffff"), min_size=0, max_size=6
)


@_fixture_reuse
@given(names=st.sets(key_text, max_size=8), prefix=key_text)
def test_list_is_the_sorted_prefix_match(store: Store, names: set[str], prefix: str) -> None:
    ns = f"h{next(_unique)}"
    with store.transaction() as tx:
        for k in names:
            tx.put(ns, k, k.encode(), rev=0)
    with store.transaction(write=False) as tx:
        got = tx.list(ns, prefix)
    assert [r.key for r in got] == sorted(k for k in names if k.startswith(prefix))
    assert all(r.body == r.key.encode() and r.rev == 1 for r in got)


BODIES = {
    "empty": b"",
    "nul": b"\x00",
    "nuls": b"\x00" * 17,
    "all-bytes": bytes(range(256)),
    "bom": b"\xff\xfe\x00\x01",
    "quotes": b"\\x00'\";--",
    "1MiB-random": os.urandom(1 << 20),
    "1MiB-nul": b"\x00" * (1 << 20),
}


def test_bodies_round_trip(store: Store) -> None:
    for name, body in BODIES.items():
        key = f"{name}/"
        assert put(store, key, body) == 1
        assert get(store, key) == Record(key, 1, body), name
        put(store, key, body + b"\x00", rev=1)
        with store.transaction(write=False) as tx:
            assert tx.list(NS, key) == [Record(key, 2, body + b"\x00")], name


@_fixture_reuse
@given(body=st.binary(max_size=4096))
def test_any_body_round_trips(store: Store, body: bytes) -> None:
    key = f"h/{next(_unique)}"
    put(store, key, body)
    assert get(store, key) == Record(key, 1, body)


# -- transactions ---------------------------------------------------------------


def test_an_exception_rolls_everything_back(store: Store) -> None:
    put(store, "kept", b"v1")
    with store.transaction(write=False) as tx:
        head = tx.audit_head()
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.put(NS, "new", b"x", rev=0)
        tx.put(NS, "kept", b"v2", rev=1)
        append_event(tx, 1)
        raise RuntimeError("boom")
    assert get(store, "new") is None
    assert get(store, "kept") == Record("kept", 1, b"v1")
    with store.transaction(write=False) as tx:
        assert tx.audit_head() == head
        assert list(tx.audit_scan()) == []


def test_a_failed_compare_and_set_leaves_the_transaction_usable(store: Store) -> None:
    put(store, "a", b"v1")
    with store.transaction() as tx:
        with pytest.raises(AlreadyExists):
            tx.put(NS, "a", b"again", rev=0)
        with pytest.raises(Conflict):
            tx.put(NS, "a", b"stale", rev=5)
        with pytest.raises(Conflict):
            tx.delete(NS, "a", rev=5)
        tx.put(NS, "b", b"fine", rev=0)
        tx.put(NS, "a", b"v2", rev=1)
    assert get(store, "a") == Record("a", 2, b"v2")
    assert get(store, "b") == Record("b", 1, b"fine")


def test_commits_are_seen_by_another_store(store_url: str) -> None:
    with opened(store_url) as a, opened(store_url) as b:
        put(a, "x", b"from-a")
        assert get(b, "x") == Record("x", 1, b"from-a")
        put(b, "x", b"from-b", rev=1)
        assert get(a, "x") == Record("x", 2, b"from-b")


def test_a_second_transaction_in_the_same_thread_is_refused(store: Store) -> None:
    with store.transaction() as tx:
        tx.put(NS, "outer", b"1", rev=0)
        with pytest.raises(StoreError), store.transaction():
            pass
    assert get(store, "outer") == Record("outer", 1, b"1")


def test_each_thread_gets_its_own_transaction(store: Store) -> None:
    def work(i: int) -> int:
        with store.transaction() as tx:
            return tx.put(NS, f"k{i}", str(i).encode(), rev=0)

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(work, range(12))) == [1] * 12
    assert keys(store) == sorted(f"k{i}" for i in range(12))


# -- races between separate stores (separate connections, as separate processes have) ---


def test_racing_the_same_compare_and_set_exactly_one_wins(store_url: str) -> None:
    with opened(store_url) as a, opened(store_url) as b:
        put(a, "c", b"start")
        barrier = threading.Barrier(2)

        def attempt(s: Store, body: bytes) -> bytes | None:
            rec = get(s, "c")
            assert rec is not None
            barrier.wait(10)
            try:
                put(s, "c", body, rev=rec.rev)
            except Conflict:
                return None
            return body

        with ThreadPoolExecutor(2) as pool:
            for round_ in range(5):
                bodies = [b"a%d" % round_, b"b%d" % round_]
                results = list(pool.map(attempt, [a, b], bodies))
                winners = [r for r in results if r is not None]
                assert len(winners) == 1, results
                assert get(a, "c") == Record("c", round_ + 2, winners[0])


def increment(s: Store, key: str) -> int:
    """Read, then compare-and-set the next value in a second transaction; retries on Conflict."""
    conflicts = 0
    while True:
        rec = get(s, key)
        assert rec is not None
        try:
            put(s, key, str(int(rec.body) + 1).encode(), rev=rec.rev)
        except Conflict:
            conflicts += 1
            continue
        return conflicts


def test_threads_on_separate_stores_lose_no_update(store_url: str) -> None:
    workers, times = 4, 15
    stores = [open_store(store_url) for _ in range(workers)]
    try:
        put(stores[0], "n", b"0")
        barrier = threading.Barrier(workers)

        def run(s: Store) -> None:
            barrier.wait(10)
            for _ in range(times):
                increment(s, "n")

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(run, stores))
        assert get(stores[0], "n") == Record(
            "n", 1 + workers * times, str(workers * times).encode()
        )
    finally:
        for s in stores:
            s.close()


def _increment_in_process(url: str, key: str, times: int, go: Any) -> None:
    """Child process body (spawned: it opens its own store from the URL)."""
    with opened(url) as s:
        if not go.wait(30):
            raise SystemExit("never told to start")
        for _ in range(times):
            increment(s, key)


def test_processes_racing_lose_no_update(store_url: str) -> None:
    procs, times = 3, 20
    with opened(store_url) as s:
        put(s, "n", b"0")
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    children = [
        ctx.Process(target=_increment_in_process, args=(store_url, "n", times, go))
        for _ in range(procs)
    ]
    for p in children:
        p.start()
    try:
        go.set()
        for p in children:
            p.join(60)
        assert [p.exitcode for p in children] == [0] * procs
    finally:
        for p in children:
            if p.is_alive():
                p.kill()
                p.join()
            p.close()
    with opened(store_url) as s:
        assert get(s, "n") == Record("n", 1 + procs * times, str(procs * times).encode())


# -- the audit log ---------------------------------------------------------------

GENESIS = "0" * 64


def link(prev: str, body: str) -> str:
    return hashlib.sha256(f"{prev}|{body}".encode()).hexdigest()


def append_event(
    tx: Any,
    day: int,
    *,
    principal: str = "alice",
    action: str = "read",
    address: str | None = "prod/a",
    result: str = "ok",
    ascii_only: bool = False,
) -> AuditRow:
    """Append the next event the way audit/chain.py does: head, then append, one transaction."""
    head = tx.audit_head()
    seq, prev = (head.seq + 1, head.hash) if head and head.seq else (1, GENESIS)
    event = {
        "seq": seq,
        "ts": f"2024-01-{day:02d}T00:00:00.000000Z",
        "principal": principal,
        "action": action,
        "address": address,
        "result": result,
    }
    body = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=ascii_only)
    row = AuditRow(seq, body, link(prev, body))
    tx.audit_append([row], AuditHead(seq, row.hash, f"mac-{seq}"))
    return row


def assert_chain(rows: list[AuditRow]) -> None:
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    prev = GENESIS
    for r in rows:
        assert r.hash == link(prev, r.body)
        assert json.loads(r.body)["seq"] == r.seq
        prev = r.hash


EVENTS: list[dict[str, Any]] = [
    dict(principal="alice", action="read", address="prod/a"),
    dict(principal="bob", action="use", address="prod/b"),
    dict(principal="alice", action="update", address="prod/a"),
    dict(principal="alice", action="read", address="prod/a", result="denied"),
    dict(principal="bob", action="audit.read", address=None),
    dict(principal="carol", action="use", address="prod/a"),
    dict(principal='d\u00e9j\u00e0 "q"', action="read", address="prod/\u00e9", ascii_only=True),
    dict(principal='d\u00e9j\u00e0 "q"', action="read", address="prod/\u00e9"),
]


@pytest.fixture
def logged(store: Store) -> list[AuditRow]:
    rows = []
    for day, fields in enumerate(EVENTS, start=1):
        with store.transaction() as tx:
            rows.append(append_event(tx, day, **fields))
    return rows


def scan(store: Store, **filters: Any) -> list[int]:
    with store.transaction(write=False) as tx:
        return [r.seq for r in tx.audit_scan(**filters)]


def test_an_empty_log(store: Store) -> None:
    for write in (True, False):
        with store.transaction(write=write) as tx:
            head = tx.audit_head()
            assert head is None or head.seq == 0
            assert list(tx.audit_scan()) == []


def test_append_moves_the_head_and_scan_returns_the_rows(
    store: Store, logged: list[AuditRow]
) -> None:
    n = len(EVENTS)
    for write in (True, False):
        with store.transaction(write=write) as tx:
            assert tx.audit_head() == AuditHead(n, logged[-1].hash, f"mac-{n}")
            rows = list(tx.audit_scan())
    assert rows == logged
    assert all(type(r.body) is str and type(r.hash) is str for r in rows)
    assert_chain(rows)


def test_scan_filters_on_the_body(store: Store, logged: list[AuditRow]) -> None:
    assert scan(store, address="prod/a") == [1, 3, 4, 6]
    assert scan(store, principal="alice") == [1, 3, 4]
    assert scan(store, since="2024-01-03T00:00:00.000000Z") == [3, 4, 5, 6, 7, 8]
    assert scan(store, since="2024-01-03") == [3, 4, 5, 6, 7, 8]  # compared as strings
    assert scan(store, since="2024-01-03T00:00:00.000001Z") == [4, 5, 6, 7, 8]
    assert scan(store, since="2024-02") == []
    assert scan(store, after_seq=4) == [5, 6, 7, 8]
    assert scan(store, limit=2) == [1, 2]
    assert scan(store, limit=0) == []
    assert scan(store, newest_first=True) == [8, 7, 6, 5, 4, 3, 2, 1]
    assert scan(store, newest_first=True, limit=2) == [8, 7]
    assert scan(store, after_seq=4, newest_first=True) == [8, 7, 6, 5]
    assert scan(store, address="prod/a", principal="alice", since="2024-01-02") == [3, 4]
    assert scan(store, address="prod/a", newest_first=True, limit=3) == [6, 4, 3]
    assert scan(store, principal="nobody") == []
    assert scan(store, address="") == []
    # JSON escapes are decoded before comparing: both spellings of the same strings match
    assert scan(store, address="prod/\u00e9") == [7, 8]
    assert scan(store, principal='d\u00e9j\u00e0 "q"') == [7, 8]


def test_scan_can_stop_early(store: Store, logged: list[AuditRow]) -> None:
    with store.transaction(write=False) as tx:
        it = tx.audit_scan()
        assert next(iter(it)).seq == 1
        assert tx.get(NS, "x") is None  # the transaction is still usable
    assert put(store, "after", b"1") == 1


def test_a_long_log_scans_in_order_across_pages(store: Store) -> None:
    total = 1300  # past one page of the PostgreSQL keyset scan (1000)
    with store.transaction() as tx:
        for i in range(total):
            last = append_event(tx, 1 + i % 28, principal=f"p{i % 3}")
    assert scan(store) == list(range(1, total + 1))
    assert scan(store, newest_first=True) == list(range(total, 0, -1))
    assert scan(store, after_seq=998, limit=300) == list(range(999, 1299))
    assert scan(store, newest_first=True, limit=1100) == list(range(total, total - 1100, -1))
    assert scan(store, principal="p1") == list(range(2, total + 1, 3))
    with store.transaction(write=False) as tx:
        assert tx.audit_head() == AuditHead(total, last.hash, f"mac-{total}")
        assert_chain(list(tx.audit_scan()))


def test_a_duplicate_seq_is_refused_without_quoting_values(store: Store) -> None:
    with store.transaction() as tx:
        first = append_event(tx, 1)
    with pytest.raises(StoreError) as info, store.transaction() as tx:
        tx.audit_append([AuditRow(1, f'{{"x":"{CANARY}"}}', CANARY)], AuditHead(1, CANARY, CANARY))
    assert CANARY not in str(info.value) and CANARY not in repr(info.value.to_dict())
    with store.transaction(write=False) as tx:
        assert list(tx.audit_scan()) == [first]
        assert tx.audit_head() == AuditHead(1, first.hash, "mac-1")


def test_concurrent_appends_from_separate_stores_form_one_chain(store_url: str) -> None:
    workers, each = 4, 8
    stores = [open_store(store_url) for _ in range(workers)]
    try:
        barrier = threading.Barrier(workers)

        def run(s: Store) -> None:
            barrier.wait(10)  # all race for the very first event
            for _ in range(each):
                with s.transaction() as tx:
                    append_event(tx, 1)

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(run, stores))
        with stores[0].transaction(write=False) as tx:
            rows = list(tx.audit_scan())
            head = tx.audit_head()
    finally:
        for s in stores:
            s.close()
    assert len(rows) == workers * each
    assert_chain(rows)
    assert head == AuditHead(workers * each, rows[-1].hash, f"mac-{workers * each}")


# -- migrations ---------------------------------------------------------------------


def test_schema_version_is_the_latest_migration(store: Store) -> None:
    assert store.dialect in ("sqlite", "postgres")
    assert store.url.startswith("sqlite" if store.dialect == "sqlite" else "postgres")
    assert store.schema_version() == migrate.latest(store.dialect) >= 1


def test_opening_again_is_idempotent(store_url: str) -> None:
    with opened(store_url) as s:
        dialect = s.dialect
        put(s, "kept", b"1")
    with opened(store_url) as a, opened(store_url) as b, opened(store_url, create=False) as c:
        for s in (a, b, c):
            assert s.schema_version() == migrate.latest(dialect)
            assert get(s, "kept") == Record("kept", 1, b"1")
    rows = raw_sql(store_url, f"SELECT version FROM {migrate.SCHEMA_TABLE} ORDER BY version")
    assert [r[0] for r in rows] == list(range(1, migrate.latest(dialect) + 1))


def test_a_newer_schema_is_refused(store_url: str) -> None:
    with opened(store_url):
        pass
    future = (999, "0999_future.sql", "2099-01-01T00:00:00+00:00")
    raw_sql(store_url, f"INSERT INTO {migrate.SCHEMA_TABLE} VALUES (?, ?, ?)", future)
    for create in (True, False):
        with pytest.raises(SchemaTooNew) as info:
            open_store(store_url, create=create)
        assert "999" in info.value.message
        assert info.value.hint and "upgrade" in info.value.hint


def test_create_false_needs_an_existing_store(store_url: str) -> None:
    with pytest.raises(StoreError) as info:
        open_store(store_url, create=False)
    assert type(info.value) is StoreError
    assert info.value.hint and "credwarden init" in info.value.hint
    if store_url.startswith("sqlite:///"):
        assert not os.path.exists(store_url[len("sqlite:///") :])
    with opened(store_url) as s:  # and creating it afterwards works
        assert s.schema_version() == migrate.latest(s.dialect)
