"""Only PostgreSQL has these: nodes migrating and writing at once, isolation, lost connections."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import credwarden.store
from credwarden.errors import Conflict, StoreError
from credwarden.store import AuditHead, Record, Store, migrate, open_store
from tests.pg import ADMIN_URL, fresh_database

from .test_conformance import CANARY, NS, append_event, get, increment, opened, put, raw_sql

postgres = pytest.mark.postgres


@pytest.fixture
def pg_url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


@pytest.fixture
def pg(pg_url: str) -> Iterator[Store]:
    with opened(pg_url) as s:
        yield s


def backends(url: str) -> list[int]:
    """PIDs of the credwarden connections to the database of `url`."""
    name = url.rsplit("/", 1)[1]
    rows = raw_sql(
        ADMIN_URL,
        "SELECT pid FROM pg_stat_activity WHERE datname = ? AND application_name = 'credwarden'",
        (name,),
    )
    return [r[0] for r in rows]


def terminate(url: str) -> None:
    for pid in backends(url):
        raw_sql(ADMIN_URL, "SELECT pg_terminate_backend(?, 5000)", (pid,))


def wait_until(cond: Any, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return bool(cond())


# -- migrations ---------------------------------------------------------------------


@postgres
def test_nodes_opening_a_fresh_database_at_once_migrate_it_once(pg_url: str) -> None:
    nodes = 6
    barrier = threading.Barrier(nodes)

    def node(_: int) -> Store:
        barrier.wait(10)
        return open_store(pg_url)

    with ThreadPoolExecutor(nodes) as pool:
        futures = [pool.submit(node, i) for i in range(nodes)]
        stores = [f.result() for f in futures]
    try:
        for s in stores:
            assert s.schema_version() == migrate.latest("postgres")
        put(stores[0], "k", b"v")
        assert get(stores[-1], "k") == Record("k", 1, b"v")
    finally:
        for s in stores:
            s.close()
    rows = raw_sql(pg_url, f"SELECT version FROM {migrate.SCHEMA_TABLE} ORDER BY version")
    assert [r[0] for r in rows] == list(range(1, migrate.latest("postgres") + 1))


@postgres
def test_the_postgres_scheme_alias_opens_the_same_store(pg_url: str, pg: Store) -> None:
    put(pg, "k", b"v")
    with opened(pg_url.replace("postgresql://", "postgres://", 1), create=False) as alias:
        assert alias.dialect == "postgres"
        assert get(alias, "k") == Record("k", 1, b"v")


# -- isolation ----------------------------------------------------------------------


@postgres
def test_a_read_transaction_sees_one_snapshot(pg_url: str, pg: Store) -> None:
    put(pg, "k", b"v1")
    with pg.transaction() as tx:
        append_event(tx, 1)
    with opened(pg_url) as other, pg.transaction(write=False) as tx:
        assert tx.get(NS, "k") == Record("k", 1, b"v1")
        head = tx.audit_head()
        put(other, "k", b"v2", rev=1)
        with other.transaction() as otx:
            append_event(otx, 2)
        assert tx.get(NS, "k") == Record("k", 1, b"v1")
        assert tx.audit_head() == head
        assert [r.seq for r in tx.audit_scan()] == [1]
    assert get(pg, "k") == Record("k", 2, b"v2")


@postgres
def test_a_write_transaction_reads_what_others_committed(pg_url: str, pg: Store) -> None:
    put(pg, "k", b"v1")
    with opened(pg_url) as other, pg.transaction() as tx:
        assert tx.get(NS, "k") == Record("k", 1, b"v1")
        put(other, "k", b"v2", rev=1)
        with pytest.raises(Conflict):  # the compare-and-set, not the snapshot, decides
            tx.put(NS, "k", b"mine", rev=1)
        assert tx.get(NS, "k") == Record("k", 2, b"v2")
        tx.put(NS, "k", b"mine", rev=2)
    assert get(pg, "k") == Record("k", 3, b"mine")


@postgres
def test_a_read_transaction_cannot_write(pg: Store) -> None:
    with pytest.raises(StoreError) as info, pg.transaction(write=False) as tx:
        tx.put(NS, CANARY, CANARY.encode(), rev=0)
    assert "read-only" in info.value.message
    assert CANARY not in info.value.message
    assert get(pg, CANARY) is None
    assert put(pg, "after", b"1") == 1  # the connection is fine afterwards


# -- concurrency ---------------------------------------------------------------------


@postgres
def test_a_racing_update_waits_for_the_row_then_conflicts(pg_url: str, pg: Store) -> None:
    put(pg, "k", b"v1")
    with opened(pg_url) as other, ThreadPoolExecutor(1) as pool:
        with pg.transaction() as tx:
            tx.put(NS, "k", b"first", rev=1)
            late = pool.submit(put, other, "k", b"second", 1)
            time.sleep(0.3)
            assert not late.done()  # blocked on the row lock
        with pytest.raises(Conflict):
            late.result(10)
    assert get(pg, "k") == Record("k", 2, b"first")


@postgres
def test_the_first_audit_event_is_serialized_too(pg_url: str, pg: Store) -> None:
    with opened(pg_url) as other, ThreadPoolExecutor(1) as pool:

        def second() -> AuditHead | None:
            with other.transaction() as otx:
                head = otx.audit_head()
                append_event(otx, 2)
                return head

        with pg.transaction() as tx:
            head = tx.audit_head()
            assert head is None or head.seq == 0
            late = pool.submit(second)
            time.sleep(0.3)
            assert not late.done()  # waits for the head, although there is no event yet
            first = append_event(tx, 1)
        assert late.result(10) == AuditHead(1, first.hash, "mac-1")
    with pg.transaction(write=False) as tx:
        assert [r.seq for r in tx.audit_scan()] == [1, 2]


@postgres
def test_read_modify_write_in_one_transaction_loses_no_update(pg_url: str) -> None:
    workers, times = 8, 10
    stores = [open_store(pg_url) for _ in range(workers)]
    try:
        put(stores[0], "n", b"0")
        barrier = threading.Barrier(workers)

        def run(s: Store) -> None:
            barrier.wait(10)
            for _ in range(times):
                while True:
                    try:
                        with s.transaction() as tx:
                            rec = tx.get(NS, "n")
                            assert rec is not None
                            tx.put(NS, "n", b"%d" % (int(rec.body) + 1), rev=rec.rev)
                        break
                    except Conflict:
                        continue

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(run, stores))
        total = workers * times
        assert get(stores[0], "n") == Record("n", total + 1, str(total).encode())
    finally:
        for s in stores:
            s.close()


@postgres
def test_a_deadlock_is_a_store_error_and_the_connections_recover(pg_url: str, pg: Store) -> None:
    put(pg, "a", b"0")
    put(pg, "b", b"0")
    both = threading.Barrier(2)

    def cross(s: Store, first: str, then: str) -> str:
        try:
            with s.transaction() as tx:
                tx.put(NS, first, b"1", rev=1)
                both.wait(10)
                tx.put(NS, then, b"1", rev=1)
        except StoreError as exc:
            return exc.message
        except Conflict:
            return "conflict"
        return "ok"

    with opened(pg_url) as other, ThreadPoolExecutor(2) as pool:
        results = sorted(pool.map(cross, [pg, other], ["a", "b"], ["b", "a"]))
        # the survivor, unblocked, finds the victim's row unchanged and commits
        assert results[0] == "ok"
        assert "collided with a concurrent one" in results[1]
        assert increment(pg, "a") == 0
        assert increment(other, "b") == 0


# -- connections -----------------------------------------------------------------


@postgres
def test_a_dead_idle_connection_is_replaced_transparently(pg_url: str, pg: Store) -> None:
    put(pg, "k", b"v")
    terminate(pg_url)
    assert get(pg, "k") == Record("k", 1, b"v")
    terminate(pg_url)
    assert put(pg, "k2", b"v") == 1


@postgres
def test_a_connection_lost_mid_transaction_fails_it_and_the_next_one_reconnects(
    pg_url: str, pg: Store
) -> None:
    put(pg, "k", b"v")
    with pytest.raises(StoreError) as info, pg.transaction() as tx:
        tx.put(NS, "lost", b"x", rev=0)
        terminate(pg_url)
        tx.get(NS, "k")
    assert "lost the connection" in info.value.message
    assert "127.0.0.1" in info.value.message
    assert get(pg, "lost") is None
    assert get(pg, "k") == Record("k", 1, b"v")


@postgres
def test_close_closes_the_connections_of_every_thread(pg_url: str) -> None:
    s = open_store(pg_url)
    try:
        with ThreadPoolExecutor(3) as pool:
            barrier = threading.Barrier(3)

            def use(_: int) -> None:
                barrier.wait(10)  # three live threads at once: three connections
                get(s, "k")

            list(pool.map(use, range(3)))
            get(s, "k")
            assert len(backends(pg_url)) == 4
    finally:
        s.close()
    assert wait_until(lambda: backends(pg_url) == [])
    with opened(pg_url) as again:  # a closed store may be reopened, not reused
        assert get(again, "k") is None


@postgres
def test_connections_of_ended_threads_are_released(pg_url: str, pg: Store) -> None:
    for _ in range(5):
        t = threading.Thread(target=get, args=(pg, "k"))
        t.start()
        t.join()
    get(pg, "k")
    assert wait_until(lambda: len(backends(pg_url)) <= 2)


# -- messages ---------------------------------------------------------------------


def test_a_connection_failure_names_the_host_but_not_the_password() -> None:
    for url in (
        f"postgresql://postgres:{CANARY}@127.0.0.1:1/credwarden",
        f"postgresql://postgres@127.0.0.1:1/credwarden?password={CANARY}&sslmode=disable",
        f"postgresql://postgres:{CANARY}@127.0.0.1:notaport/credwarden",
    ):
        with pytest.raises(StoreError) as info:
            open_store(url)
        text = f"{info.value.message} {info.value.hint}"
        assert "127.0.0.1" in text
        assert CANARY not in text


@postgres
def test_a_missing_database_is_named(pg_url: str) -> None:
    missing = pg_url.rsplit("/", 1)[0].replace("postgres@", f"postgres:{CANARY}@") + "/cw_nope_0"
    with pytest.raises(StoreError) as info:
        open_store(missing)
    assert "cw_nope_0" in info.value.message
    assert CANARY not in info.value.message and "postgres:***@" in info.value.message


@postgres
def test_server_errors_never_quote_parameters(pg: Store) -> None:
    import psycopg

    from credwarden.store.postgres import _store_error

    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE t (k text PRIMARY KEY)")
        conn.execute("INSERT INTO t VALUES (%s)", (CANARY,))
        for statement, params in (
            ("INSERT INTO t VALUES (%s)", (CANARY,)),  # DETAIL: Key (k)=(CANARY...)
            ("SELECT %s::int", (CANARY,)),  # invalid input syntax for type integer: "CANARY..."
            ("SELECT %s", (CANARY + "\x00",)),  # refused by psycopg before sending
        ):
            with pytest.raises(psycopg.Error) as info:
                conn.execute(statement, params)
            assert CANARY in str(info.value) or "NUL" in str(info.value)
            err = _store_error(info.value, "postgresql://x")
            assert isinstance(err, StoreError)
            assert CANARY not in err.message


@postgres
def test_a_nul_in_a_key_is_a_store_error(pg: Store) -> None:
    with pytest.raises(StoreError) as info, pg.transaction() as tx:
        tx.put(NS, f"{CANARY}\x00", b"x", rev=0)
    assert CANARY not in info.value.message


@postgres
def test_a_swallowed_database_error_still_fails_the_transaction(pg: Store) -> None:
    with pg.transaction() as tx:
        first = append_event(tx, 1)
    with pytest.raises(StoreError) as info, pg.transaction() as tx:
        tx.put(NS, "before", b"x", rev=0)
        with pytest.raises(StoreError):  # a duplicate seq: the server aborts the transaction
            tx.audit_append([first], AuditHead(1, first.hash, "mac-1"))
    assert "nothing was saved" in info.value.message
    assert get(pg, "before") is None
    assert put(pg, "after", b"1") == 1


@postgres
def test_list_order_ignores_the_database_collation() -> None:
    names = ["a", "B", "_", "a-b", "a/b", "ab", "A", "\u00e9", "e", "z"]
    with fresh_database(icu_locale="en-US") as url, opened(url) as s:
        for k in names:
            put(s, k, b"")
        with s.transaction(write=False) as tx:
            assert [r.key for r in tx.list(NS)] == sorted(names)
            assert [r.key for r in tx.list(NS, "a")] == ["a", "a-b", "a/b", "ab"]


def test_without_psycopg_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # makes `import psycopg` fail
    monkeypatch.delitem(sys.modules, "credwarden.store.postgres", raising=False)
    if hasattr(credwarden.store, "postgres"):
        monkeypatch.setattr(credwarden.store, "postgres", credwarden.store.postgres)
    with pytest.raises(StoreError) as info:
        open_store("postgresql://postgres@127.0.0.1:1/credwarden")
    assert info.value.hint == "pip install 'credwarden[postgres]'"
