"""Invariant 4: a write that races another write of the same credential fails with a conflict
(compare-and-set on the version); nothing is silently overwritten. Across Warden objects,
threads and processes, on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from credwarden import Conflict, Warden
from credwarden.errors import AlreadyExists
from tests import workers

A = "prod/stripe/billing"


def race(*ops: Callable[[], Any]) -> list[Any]:
    """Run the ops at once in threads (released together); their results or exceptions."""
    barrier = threading.Barrier(len(ops))
    results: list[Any] = [None] * len(ops)

    def run(i: int, op: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[i] = op()
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, op)) for i, op in enumerate(ops)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
        assert not t.is_alive()
    return results


def test_two_wardens_same_expected_version(
    warden: Warden, open_warden: Callable[..., Warden]
) -> None:
    other = open_warden()
    warden.add(A, "secret", {"value": "v1"})
    assert other.describe(A).version == warden.describe(A).version == 1

    assert warden.update(A, fields={"value": "mine"}, expected_version=1).version == 2
    with pytest.raises(Conflict) as exc:
        other.update(A, fields={"value": "theirs"}, expected_version=1)
    assert exc.value.exit_code == 6
    assert A in exc.value.message and exc.value.hint
    for stale in (
        lambda: other.update(A, description="stale metadata", expected_version=1),
        lambda: other.rollback(A, 1, expected_version=1),
        lambda: other.remove(A, expected_version=1),
    ):
        with pytest.raises(Conflict):
            stale()
    info = other.describe(A)
    assert info.version == 2 and info.description is None
    assert other.get(A).reveal() == "mine"


def test_racing_updates_exactly_one_wins(
    warden: Warden, open_warden: Callable[..., Warden]
) -> None:
    other = open_warden()
    warden.add(A, "secret", {"value": "v1"})
    for round_ in range(5):
        version = warden.describe(A).version
        a, b = race(
            lambda v=version, r=round_: warden.update(
                A, fields={"value": f"a{r}"}, expected_version=v
            ),
            lambda v=version, r=round_: other.update(
                A, fields={"value": f"b{r}"}, expected_version=v
            ),
        )
        outcomes = sorted(type(r).__name__ for r in (a, b))
        wins = [r for r in (a, b) if not isinstance(r, Exception)]
        losses = [r for r in (a, b) if isinstance(r, Exception)]
        assert len(wins) == 1 and len(losses) == 1, outcomes
        assert isinstance(losses[0], Conflict), repr(losses[0])
        assert losses[0].exit_code == 6
        assert wins[0].version == version + 1
        winner = "a" if wins[0] is a else "b"
        assert warden.get(A).reveal() == f"{winner}{round_}"
    assert [h.version for h in warden.history(A)] == [6, 5, 4, 3, 2, 1]
    assert warden.verify_audit().ok


def test_threads_lose_no_update(warden: Warden, open_warden: Callable[..., Warden]) -> None:
    other = open_warden()
    warden.add(A, "secret", {"value": "start"})
    threads_n, per_thread = 8, 10
    conflicts = [0] * threads_n
    failures: list[BaseException] = []

    def work(t: int) -> None:
        w = warden if t % 2 else other
        try:
            for i in range(per_thread):
                while True:
                    version = w.describe(A).version
                    try:
                        w.update(
                            A,
                            fields={"value": f"t{t}-{i}"},
                            note=f"t{t}-{i}",
                            expected_version=version,
                        )
                        break
                    except Conflict:
                        conflicts[t] += 1
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures, failures
    total = threads_n * per_thread
    assert warden.describe(A).version == 1 + total
    hist = warden.history(A)
    assert len(hist) == 1 + total
    notes = sorted(h.note for h in hist if h.note != "created")
    assert notes == sorted(f"t{t}-{i}" for t in range(threads_n) for i in range(per_thread))
    assert warden.verify_audit().ok


def test_processes_count_without_losing_increments(
    warden: Warden, database_url: str, home: Any
) -> None:
    warden.add(A, "secret", {"value": "0"})
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=workers.cas_increments, args=(database_url, str(home), A, 10))
        for _ in range(3)
    ]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join(120)
            assert p.exitcode == 0
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
            p.close()
    assert warden.get(A).reveal() == "30"
    assert warden.describe(A).version == 31
    report = warden.verify_audit()
    assert report.ok
    writers = {e.source for e in warden.audit_events(address=A) if e.action == "write"}
    assert len(writers - {"sdk"}) == 3  # each process wrote, under its own source


def test_concurrent_add_of_one_address(warden: Warden, open_warden: Callable[..., Warden]) -> None:
    other = open_warden()
    for n in range(4):
        address = f"dev/race/c{n}"
        a, b = race(
            lambda address=address: warden.add(address, "secret", {"value": "a"}),
            lambda address=address: other.add(address, "secret", {"value": "b"}),
        )
        errors = [r for r in (a, b) if isinstance(r, Exception)]
        wins = [r for r in (a, b) if not isinstance(r, Exception)]
        assert len(errors) == 1 and len(wins) == 1, (a, b)
        assert isinstance(errors[0], AlreadyExists) and isinstance(errors[0], Conflict)
        assert errors[0].exit_code == 6
        assert address in errors[0].message
        value = warden.get(address).reveal()
        assert value == ("a" if wins[0] is a else "b")
        assert [h.version for h in warden.history(address)] == [1]
    assert warden.verify_audit().ok


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_update_losing_on_postgres_is_a_plain_conflict(warden: Warden, database_url: str) -> None:
    import psycopg

    info = warden.add(A, "secret", {"value": "v1"})
    result: list[Any] = []
    with psycopg.connect(database_url) as rival:  # another writer, mid-transaction
        ((body,),) = rival.execute(
            "SELECT body FROM records WHERE ns = 'ver' AND key = %s",
            (f"{info.id}/{1:010d}",),
        ).fetchall()
        rival.execute(
            "INSERT INTO records (ns, key, rev, body) VALUES ('ver', %s, 1, %s)",
            (f"{info.id}/{2:010d}", body),
        )
        rival.execute("UPDATE records SET rev = rev + 1 WHERE ns = 'cred' AND key = %s", (A,))

        def loser() -> None:
            try:
                result.append(warden.update(A, fields={"value": "v2"}, expected_version=1))
            except Exception as exc:
                result.append(exc)

        t = threading.Thread(target=loser)
        t.start()
        deadline = time.monotonic() + 20
        with psycopg.connect(database_url, autocommit=True) as watcher:
            while time.monotonic() < deadline:
                waiting = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND application_name = 'credwarden' AND wait_event_type = 'Lock'"
                ).fetchall()[0][0]
                if waiting:
                    break
                time.sleep(0.02)
        rival.commit()
        t.join(30)
    (exc,) = result
    assert isinstance(exc, Conflict)
    assert exc.code == "conflict", f"{type(exc).__name__}: {exc}"
    assert A in exc.message and exc.hint


def test_workers_module_is_importable_without_pytest() -> None:
    assert "pytest" not in workers.cas_increments.__code__.co_names
    assert os.path.basename(workers.__file__) == "workers.py"
