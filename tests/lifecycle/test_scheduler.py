"""The scheduler of `credwarden serve`: a shared job runs once per interval across nodes, even
when the node running it dies mid-run or loses the job's lock (fenced by its heartbeat); a
failing or hung job is recorded and the others go on."""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from credwarden import NotFound, Warden
from credwarden.errors import LockTimeout, StoreError
from credwarden.lifecycle.scheduler import NS_JOB, Job, Scheduler, default_jobs
from credwarden.timeutil import iso, parse_iso, utcnow
from tests.conftest import CANARY
from tests.sinks import ListSink

HB = 0.2
"""A small heartbeat: a run's lease goes stale 3 * HB after its node's last one."""


class Counter:
    """A job body counting its runs (thread-safe), optionally slow."""

    def __init__(self, pause: float = 0.0) -> None:
        self.runs = 0
        self.pause = pause
        self._lock = threading.Lock()

    def __call__(self, w: Warden) -> dict[str, Any]:
        with self._lock:
            self.runs += 1
            n = self.runs
        time.sleep(self.pause)
        return {"n": n}


def _lease(w: Warden, name: str) -> dict[str, Any] | None:
    with w.records.store.transaction(write=False) as tx:
        rec = tx.get(NS_JOB, name)
    return None if rec is None else dict(json.loads(rec.body))


def _status(s: Scheduler, name: str) -> dict[str, Any]:
    return next(st for st in s.status() if st["name"] == name)


def _lockless(monkeypatch: pytest.MonkeyPatch, w: Warden) -> None:
    """Every lock `w` asks for is granted at once: as for a node whose peer running a job lost
    the job's lock (a network blip, a failover) while living on."""
    monkeypatch.setattr(w.records.store, "lock", lambda name, *, timeout: contextlib.nullcontext())


def _seconds(later: str, earlier: str) -> float:
    return (parse_iso(later) - parse_iso(earlier)).total_seconds()


def _wait_for(check: Callable[[], bool], within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _together(*calls: Callable[[], list[str]]) -> list[list[str]]:
    """Run the calls at once, one thread each; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[list[str]] = [[] for _ in calls]

    def run(i: int) -> None:
        barrier.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def test_a_shared_job_runs_once_across_nodes(
    warden: Warden, open_warden: Callable[..., Warden]
) -> None:
    body = Counter(pause=0.3)  # long enough for the other node to find the lock taken
    job = Job("nightly", 3600, body)
    a = Scheduler(open_warden(), [job], node="node-a")
    b = Scheduler(open_warden(), [job], node="node-b")
    results = _together(a.run_pending, b.run_pending, a.run_pending, b.run_pending)
    assert sorted(n for r in results for n in r) == ["nightly"]
    assert body.runs == 1
    assert a.run_pending() == [] and b.run_pending() == []  # not due for an hour

    lease = _lease(warden, "nightly")
    assert lease is not None
    assert lease["node"] in ("node-a", "node-b") and lease["result"] == {"n": 1}
    assert lease["started_at"] <= lease["finished_at"]
    st = _status(Scheduler(warden, [job], node="node-c"), "nightly")  # seen from any node
    assert st["last_node"] == lease["node"]
    assert st["last_result"] == {"n": 1} and st["last_error"] is None
    assert st["last_finished_at"] == lease["finished_at"] and st["running"] is False


def test_a_shared_job_runs_again_once_its_interval_has_passed(
    warden: Warden, open_warden: Callable[..., Warden]
) -> None:
    body = Counter()
    job = Job("often", 0.4, body)
    a = Scheduler(open_warden(), [job], node="node-a")
    b = Scheduler(open_warden(), [job], node="node-b")
    assert a.run_pending() == ["often"]
    assert b.run_pending() == [] and a.run_pending() == []
    time.sleep(0.45)
    assert b.run_pending() == ["often"]
    assert a.run_pending() == []
    time.sleep(0.45)
    results = _together(a.run_pending, b.run_pending)
    assert sorted(n for r in results for n in r) == ["often"]
    assert body.runs == 3
    lease = _lease(warden, "often")
    assert lease is not None and lease["result"] == {"n": 3}


def test_a_job_not_shared_runs_on_every_node(
    warden: Warden, open_warden: Callable[..., Warden]
) -> None:
    body = Counter()
    job = Job("local", 3600, body, shared=False)
    a = Scheduler(open_warden(), [job], node="node-a")
    b = Scheduler(open_warden(), [job], node="node-b")
    assert a.run_pending() == ["local"] and b.run_pending() == ["local"]
    assert a.run_pending() == [] and b.run_pending() == []
    assert body.runs == 2
    assert _lease(warden, "local") is None  # timed in memory, per node
    st = _status(a, "local")
    assert st["last_node"] == "node-a" and st["last_result"] == {"n": 1}


def test_a_failing_job_is_recorded_and_the_others_go_on(
    warden: Warden, caplog: pytest.LogCaptureFixture
) -> None:
    def leaky(w: Warden) -> dict[str, Any]:
        raise ValueError(f"password={CANARY}")

    def missing(w: Warden) -> dict[str, Any]:
        raise NotFound("no credential at dev/x/y")

    def not_json(w: Warden) -> dict[str, Any]:
        return {"value": object()}

    good = Counter()
    jobs = [
        Job("leaky", 3600, leaky),
        Job("missing", 3600, missing),
        Job("not-json", 3600, not_json, shared=False),
        Job("good", 3600, good),
    ]
    s = Scheduler(warden, jobs, node="n1")
    with caplog.at_level(logging.DEBUG, logger="credwarden.scheduler"):
        assert s.run_pending() == ["leaky", "missing", "not-json", "good"]
    assert good.runs == 1
    by_name = {st["name"]: st for st in s.status()}
    assert by_name["leaky"]["last_error"] == {"type": "ValueError"}
    assert by_name["missing"]["last_error"] == {
        "type": "NotFound",
        "code": "not_found",
        "message": "no credential at dev/x/y",
    }
    assert by_name["not-json"]["last_error"] == {"type": "TypeError"}
    assert by_name["good"]["last_result"] == {"n": 1} and by_name["good"]["last_error"] is None
    assert all(st["last_finished_at"] for st in by_name.values())
    # The error is logged, by type: never the exception's text.
    assert "job leaky failed" in caplog.text and "ValueError" in caplog.text
    assert CANARY not in caplog.text
    assert CANARY not in json.dumps(s.status())
    assert CANARY not in json.dumps(_lease(warden, "leaky"))
    assert s.run_pending() == []  # a failed run counts as a run: due again in an hour


def test_start_runs_jobs_in_the_background_and_stop_lets_a_running_job_finish(
    warden: Warden,
) -> None:
    quick = Counter()
    entered = threading.Event()
    finished: list[bool] = []

    def slow(w: Warden) -> dict[str, Any]:
        entered.set()
        time.sleep(0.4)
        finished.append(True)
        return {"slow": True}

    s = Scheduler(
        warden,
        [Job("quick", 0.05, quick), Job("slow", 3600, slow, shared=False)],
        tick=0.02,
        node="bg",
    )
    s.start()
    s.start()  # already running: a no-op
    deadline = time.monotonic() + 10
    while quick.runs < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert quick.runs >= 3
    assert entered.wait(10)
    assert s.stop(timeout=10) is True
    assert finished == [True]  # the running job was let finish
    runs = quick.runs
    st = _status(s, "slow")
    assert st["running"] is False and st["last_result"] == {"slow": True}
    time.sleep(0.2)
    assert quick.runs == runs  # nothing runs after stop
    assert not [t for t in threading.enumerate() if t.name.endswith("[bg]") and t.is_alive()]

    s.start()  # and it can start again
    deadline = time.monotonic() + 10
    while quick.runs == runs and time.monotonic() < deadline:
        time.sleep(0.02)
    assert quick.runs > runs
    assert s.stop(timeout=10) is True


def test_a_lock_timeout_inside_a_job_keeps_the_jobs_lock(
    warden: Warden, open_warden: Callable[..., Warden]
) -> None:
    """A job's own lock timing out (a refresh lock held elsewhere) must not free the job's lock:
    on PostgreSQL that timeout closes its thread's lock session, hence the worker thread."""
    held, release, timed_out, go_on = (threading.Event() for _ in range(4))

    def holder() -> None:
        with warden.records.store.lock("refresh:dev/a/b", timeout=5):
            held.set()
            release.wait(10)

    def job_body(w: Warden) -> dict[str, Any]:
        try:
            with w.records.store.lock("refresh:dev/a/b", timeout=0.05):
                pass
        except LockTimeout:
            timed_out.set()
        go_on.wait(10)
        return {}

    other = Counter()
    a = Scheduler(open_warden(), [Job("nested", 3600, job_body)], node="node-a")
    b = Scheduler(open_warden(), [Job("nested", 3600, other)], node="node-b")
    t_hold = threading.Thread(target=holder)
    t_hold.start()
    assert held.wait(10)
    ran: list[list[str]] = []
    t_a = threading.Thread(target=lambda: ran.append(a.run_pending()))
    t_a.start()
    try:
        assert timed_out.wait(10)
        assert b.run_pending() == []  # node-a still holds the job's lock
    finally:
        go_on.set()
        release.set()
        t_a.join(10)
        t_hold.join(10)
    assert ran == [["nested"]] and other.runs == 0
    assert _status(a, "nested")["last_error"] is None


def test_a_live_node_that_lost_the_jobs_lock_is_fenced_by_its_heartbeat(
    warden: Warden, open_warden: Callable[..., Warden], monkeypatch: pytest.MonkeyPatch
) -> None:
    entered, release = threading.Event(), threading.Event()

    def held(w: Warden) -> dict[str, Any]:
        entered.set()
        release.wait(10)
        return {"by": "a"}

    other = Counter()
    a = Scheduler(open_warden(), [Job("fenced", 3600, held)], node="node-a", heartbeat=HB)
    wb = open_warden()
    b = Scheduler(wb, [Job("fenced", 3600, other)], node="node-b", heartbeat=HB)
    _lockless(monkeypatch, wb)
    ran: list[list[str]] = []
    t_a = threading.Thread(target=lambda: ran.append(a.run_pending()))
    t_a.start()
    beats: set[str] = set()
    try:
        assert entered.wait(10)
        deadline = time.monotonic() + 6 * HB  # twice as long as a run goes stale unbeaten
        while time.monotonic() < deadline:
            assert b.run_pending() == []  # the lock is no obstacle to node-b: the heartbeat is
            lease = _lease(warden, "fenced")
            assert lease is not None and lease["node"] == "node-a"
            if lease.get("heartbeat_at"):
                beats.add(lease["heartbeat_at"])
            time.sleep(0.05)
    finally:
        release.set()
        t_a.join(10)
    assert ran == [["fenced"]] and other.runs == 0
    assert len(beats) >= 3  # node-a kept heart-beating
    lease = _lease(warden, "fenced")
    assert lease is not None and lease["node"] == "node-a" and lease["result"] == {"by": "a"}
    assert b.run_pending() == []  # and once it is done, not due for an hour


def test_a_run_whose_heartbeat_went_stale_is_taken_over(
    warden: Warden,
    open_warden: Callable[..., Warden],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """node-a lives, but loses the store (its lock and its writes) mid-run: its heartbeat goes
    stale and node-b runs the job; node-a, back, finds the lease taken and leaves it alone."""
    entered, release, cut = threading.Event(), threading.Event(), threading.Event()

    def held(w: Warden) -> dict[str, Any]:
        entered.set()
        release.wait(10)
        return {"by": "a"}

    wa, wb = open_warden(), open_warden()
    real_transaction = wa.records.store.transaction

    def flaky_transaction(*, write: bool = True) -> Any:
        if cut.is_set():
            raise StoreError("the store cannot be reached")
        return real_transaction(write=write)

    monkeypatch.setattr(wa.records.store, "transaction", flaky_transaction)
    _lockless(monkeypatch, wb)
    other = Counter()
    a = Scheduler(wa, [Job("taken", 3600, held)], node="node-a", heartbeat=HB)
    b = Scheduler(wb, [Job("taken", 3600, other)], node="node-b", heartbeat=HB)
    ran_a: list[list[str]] = []
    t_a = threading.Thread(target=lambda: ran_a.append(a.run_pending()))
    caplog.set_level(logging.WARNING, logger="credwarden.scheduler")
    t_a.start()
    try:
        assert entered.wait(10)
        assert b.run_pending() == []  # started just now: fresh
        cut.set()
        ran: list[str] = []
        seen: dict[str, Any] | None = None
        deadline = time.monotonic() + 10
        while not ran and time.monotonic() < deadline:
            seen = _lease(warden, "taken")
            ran = b.run_pending()
            if not ran:
                time.sleep(0.02)
        assert ran == ["taken"] and other.runs == 1
        assert seen is not None and seen["node"] == "node-a" and not seen["finished_at"]
        taken = _lease(warden, "taken")
        assert taken is not None and taken["node"] == "node-b" and taken["result"] == {"n": 1}
        last_beat = seen.get("heartbeat_at") or seen["started_at"]
        assert _seconds(taken["started_at"], last_beat) >= 3 * HB  # stale, not merely unlocked
        assert "job taken: heartbeat not written: StoreError" in caplog.text
        cut.clear()  # node-a is back: its next heartbeat finds the lease written by node-b
        assert _wait_for(lambda: "heartbeat stopped" in caplog.text), caplog.text
    finally:
        cut.clear()
        release.set()
        t_a.join(10)
    assert ran_a == [["taken"]]
    assert "this run's outcome is not recorded there" in caplog.text
    assert _lease(warden, "taken") == taken  # node-b's run stands
    assert _status(a, "taken")["running"] is False


def test_a_hung_job_times_out_and_the_others_go_on(
    warden: Warden, open_warden: Callable[..., Warden], caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()
    hung_runs: list[int] = []

    def hung(w: Warden) -> dict[str, Any]:
        hung_runs.append(1)
        if len(hung_runs) == 1:
            release.wait(20)
        return {"n": len(hung_runs)}

    quick = Counter()
    jobs = [Job("hung", 0.1, hung, max_run=0.3), Job("quick", 0.1, quick)]
    s = Scheduler(warden, jobs, node="n1", heartbeat=HB)
    try:
        t0 = time.monotonic()
        with caplog.at_level(logging.ERROR, logger="credwarden.scheduler"):
            assert s.run_pending() == ["hung", "quick"]
        assert 0.3 <= time.monotonic() - t0 < 5
        assert "job hung did not finish within 0.3 s" in caplog.text
        assert hung_runs == [1] and quick.runs == 1
        lease = _lease(warden, "hung")
        assert lease is not None and lease["error"] == {"type": "Timeout"}
        assert lease["finished_at"] >= lease["started_at"] and "result" not in lease
        assert lease["heartbeat_at"]  # it heart-beat while it was waited for
        st = _status(s, "hung")
        assert st["last_error"] == {"type": "Timeout"} and st["running"] is True
        with open_warden().records.store.lock("job:hung", timeout=1):  # released
            pass

        for _ in range(3):  # due again, but still running here: not started twice
            time.sleep(0.12)
            assert s.run_pending() == ["quick"]
        assert hung_runs == [1] and quick.runs == 4
    finally:
        release.set()
    assert _wait_for(lambda: _status(s, "hung")["running"] is False)
    time.sleep(0.12)
    assert s.run_pending() == ["hung", "quick"]
    assert hung_runs == [1, 1]
    lease = _lease(warden, "hung")
    assert lease is not None and lease["result"] == {"n": 2} and "error" not in lease
    assert s.stop(timeout=5) is True


CHILD = f"""
import time
HB = {HB!r}
from credwarden import Warden
from credwarden.lifecycle.scheduler import Job, Scheduler

def hang(w):
    print("started", flush=True)
    time.sleep(600)
    return {{}}

w = Warden.open(source="scheduler-child")
Scheduler(w, [Job("crashy", 3600, hang)], node="child", heartbeat=HB).run_pending()
"""


def test_a_job_whose_node_died_mid_run_runs_on_another_node(warden: Warden) -> None:
    body = Counter()
    parent = Scheduler(warden, [Job("crashy", 3600, body)], node="parent", heartbeat=HB)
    with subprocess.Popen(
        [sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        try:
            line = proc.stdout.readline()
            assert line.strip() == "started", line or proc.stderr.read()
            assert parent.run_pending() == []  # the child holds the job's lock
            st = _status(parent, "crashy")
            assert st["last_node"] == "child" and st["last_started_at"]
            assert st["last_finished_at"] is None
            assert _wait_for(lambda: bool((_lease(warden, "crashy") or {}).get("heartbeat_at")))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 15
    ran: list[str] = []
    seen: dict[str, Any] | None = None
    while not ran and time.monotonic() < deadline:  # the lock goes with the child's session,
        seen = _lease(warden, "crashy")  # and the run with its heartbeat, 3 beats on
        ran = parent.run_pending()
        if not ran:
            time.sleep(0.05)
    assert ran == ["crashy"]
    assert body.runs == 1
    st = _status(parent, "crashy")
    assert st["last_node"] == "parent" and st["last_result"] == {"n": 1}
    assert st["last_finished_at"] >= st["last_started_at"]
    assert seen is not None and seen["node"] == "child"
    assert _seconds(st["last_started_at"], seen["heartbeat_at"]) >= 3 * HB


def test_the_default_jobs(warden: Warden) -> None:
    jobs = default_jobs()
    assert [(j.name, j.every, j.shared) for j in jobs] == [
        ("refresh", 30, True),
        ("expiry-sweep", 3600, True),
        ("token-use", 10, False),
    ]
    now = utcnow()
    warden.add("dev/a/gone", "secret", {"value": "x"}, expires_at=iso(now - timedelta(days=1)))
    warden.add("dev/a/soon", "secret", {"value": "x"}, expires_at=iso(now + timedelta(days=3)))
    warden.add("dev/a/fine", "secret", {"value": "x"}, expires_at=iso(now + timedelta(days=90)))
    warden.add_principal("bot", type="workflow")
    _, token = warden.issue_token("bot")
    warden.authenticate(token.reveal())  # a use, kept in memory until the token-use job
    sink = warden.alerts = ListSink()

    s = Scheduler(warden, jobs, node="n1")
    assert s.run_pending() == ["refresh", "expiry-sweep", "token-use"]
    by_name = {st["name"]: st for st in s.status()}
    assert all(st["last_error"] is None for st in by_name.values()), by_name
    assert by_name["refresh"]["last_result"] == {
        "checked": 0,
        "ok": 0,
        "failed": 0,
        "failures": [],
    }
    assert by_name["expiry-sweep"]["last_result"] == {
        "expiring": 1,
        "expired": 1,
        "rotation_due": 0,
        "needs_reauth": 0,
        "alerted": 2,
        "sink_errors": 0,
    }
    assert sorted(sink.alerts) == [("expired", "dev/a/gone"), ("expiring", "dev/a/soon")]
    assert by_name["token-use"]["last_result"] == {"flushed": 1}
    assert s.run_pending() == []
