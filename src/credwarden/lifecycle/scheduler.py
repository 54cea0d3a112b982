"""Keeps credentials healthy with nobody asking: `credwarden serve`'s jobs, once per interval.

A shared job runs on one node per interval across every node sharing the store:
the node takes the store lock `job:NAME` (skipping quietly when another node holds
it), then reads the job's lease record (namespace "job", key NAME) and runs the job
only when the last run finished at least `every` seconds ago. The record is marked
started before the run and finished after it; the lock dies with its holder (an OS
file lock, a PostgreSQL session). A job that is not shared (flushing this node's
in-memory counters) runs on every node, timed in memory.

The lock alone does not make a run "once": its session can be lost while its node lives
(a network blip, a database failover), and another node would then take the lock and run
the job a second time, concurrently. So the lease is fenced by a heartbeat: while a shared
job runs, its node writes `heartbeat_at` to the lease record every `heartbeat` seconds
(compare-and-set on the record's rev; once that fails, another node has written the lease,
and this one stops heart-beating and leaves the record alone). Under the lock, a node skips
a job whose lease shows a run started on another node (started_at newer than finished_at)
with a heartbeat (or, before the first one, started_at) within STALE_BEATS heartbeats of
now. A node that died stops heart-beating, so another node takes its job over within about
STALE_BEATS heartbeats. Every node sharing a store must use the same heartbeat.

Jobs run on a long-lived worker thread per job, not on the thread holding the job's lock:
a job takes store locks of its own (a refresh lock per connection), and on PostgreSQL a
lock that times out closes its thread's lock session -- which would silently drop the
job's lock along with it. The thread holding the lock waits for the job at most its
`max_run` seconds: past that, the run is recorded as failed ({"type": "Timeout"}), the lock
is released and the scheduler moves on. Python cannot stop a thread, so the timed-out run
may go on in the background (and, once its interval has passed, another node may run the
job meanwhile); this node does not start that job again until the run has ended.
"""

from __future__ import annotations

import builtins
import json
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import Any, Final, NamedTuple, Protocol

from ..errors import Conflict, CredwardenError, LockTimeout, StoreCorrupt
from ..model import CredentialInfo
from ..operation import AlertSink
from ..records import Records
from ..store import rows
from ..timeutil import iso, parse_iso, utcnow

NS_JOB: Final = "job"
LOCK_WAIT_S: Final = 0.05
"""How long a node waits for a shared job's lock: a holder is running the job, so never long."""
HEARTBEAT_S: Final = 2.0
"""How often the node running a shared job writes `heartbeat_at` to the job's lease record."""
STALE_BEATS: Final = 3
"""A running lease whose last heartbeat is more than this many heartbeats old is a dead node's."""
MAX_RUN_MIN_S: Final = 60.0
MAX_RUN_MAX_S: Final = 3600.0
"""A job's default `max_run`: ten intervals, within [MAX_RUN_MIN_S, MAX_RUN_MAX_S]."""

REFRESH_EVERY_S: Final = 30.0
REFRESH_WITHIN_S: Final = 300
SWEEP_EVERY_S: Final = 3600.0
TOKEN_USE_EVERY_S: Final = 10.0
ALERT_STATES: Final = ("expiring", "expired", "rotation_due", "needs_reauth")

logger = logging.getLogger("credwarden.scheduler")


class JobHost(Protocol):
    """What the scheduler needs from the facade: the records (the store's cross-node locks
    and the lease records), where alerts go, and the operations the default jobs call."""

    records: Records
    alerts: AlertSink

    def refresh_due(self, *, within: int = 300) -> builtins.list[dict[str, Any]]: ...

    def list(
        self,
        *,
        env: str | None = None,
        service: str | None = None,
        kind: str | None = None,
        health: str | None = None,
    ) -> builtins.list[CredentialInfo]: ...

    def flush_token_use(self) -> int: ...


class Job(NamedTuple):
    """A job: `run(host)` every `every` seconds; `shared` ones once per interval across all
    nodes, the others on each node (for per-node state such as in-memory counters). A run
    lasting more than `max_run` seconds (None: ten intervals, within one minute and one hour)
    is recorded as timed out."""

    name: str
    every: float
    run: Callable[[JobHost], dict[str, Any]]
    shared: bool = True
    max_run: float | None = None

    def run_limit(self) -> float:
        """How long the scheduler waits for one run, in seconds."""
        if self.max_run is not None:
            return self.max_run
        return min(max(10 * self.every, MAX_RUN_MIN_S), MAX_RUN_MAX_S)


class _State:
    """What this node knows of one job."""

    __slots__ = (
        "error",
        "finished_at",
        "mutex",
        "node",
        "not_before",
        "result",
        "running",
        "started_at",
        "stray",
    )

    def __init__(self) -> None:
        self.mutex = threading.Lock()  # one run of a job at a time in this process
        self.running = False
        self.not_before = 0.0  # wall-clock time before which the job is known not to be due
        self.started_at: str | None = None
        self.finished_at: str | None = None
        self.node: str | None = None
        self.result: dict[str, Any] | None = None
        self.error: dict[str, Any] | None = None
        self.stray: _Call | None = None  # a run that outlived its max_run, maybe still going

    def busy(self) -> bool:
        return self.running or (self.stray is not None and not self.stray.done.is_set())


class _TimedOut(Exception):
    """A run outlived its job's max_run."""


class _Call:
    __slots__ = ("done", "error", "fn", "result")

    def __init__(self, fn: Callable[[], dict[str, Any]]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.result: dict[str, Any] = {}
        self.error: BaseException | None = None


class _Worker:
    """One daemon thread running the jobs handed to it, started on first use."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()

    def submit(self, fn: Callable[[], dict[str, Any]]) -> _Call:
        """Hand `fn` to the worker thread; the call's `done` is set once it has run."""
        c = _Call(fn)
        with self._guard:
            if self._thread is None:
                self._calls = queue.SimpleQueue()
                self._thread = threading.Thread(
                    target=self._loop, args=(self._calls,), name=self._name, daemon=True
                )
                self._thread.start()
            self._calls.put(c)
        return c

    @staticmethod
    def _loop(calls: queue.SimpleQueue[_Call | None]) -> None:
        while (c := calls.get()) is not None:
            try:
                c.result = c.fn()
            except BaseException as exc:  # handed to the caller, which decides
                c.error = exc
            finally:
                c.done.set()

    def close(self) -> None:
        """Let the thread end once the calls already handed over are done."""
        with self._guard:
            if self._thread is not None:
                self._calls.put(None)
                self._thread = None


class Scheduler:
    """Runs `jobs` against `host` (the facade): in a daemon thread (`start`/`stop`) every `tick`
    seconds, or one pass at a time (`run_pending`)."""

    def __init__(
        self,
        host: JobHost,
        jobs: Sequence[Job],
        *,
        tick: float = 1.0,
        node: str | None = None,
        heartbeat: float = HEARTBEAT_S,
    ) -> None:
        names = [j.name for j in jobs]
        if len(set(names)) != len(names):
            raise ValueError("job names must be unique")
        if any(not j.every > 0 or not j.run_limit() > 0 for j in jobs):
            raise ValueError("job intervals and run limits must be positive")
        if not tick > 0 or not heartbeat > 0:
            raise ValueError("the tick and the heartbeat must be positive")
        self._host = host
        self._jobs = list(jobs)
        self._tick = tick
        self._heartbeat = heartbeat
        self.node = node or f"{socket.gethostname()}:{os.getpid()}"
        self._states = {j.name: _State() for j in self._jobs}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._workers = {
            j.name: _Worker(f"credwarden-job-{j.name}[{self.node}]") for j in self._jobs
        }

    @property
    def jobs(self) -> list[Job]:
        return list(self._jobs)

    # -- the thread ------------------------------------------------------------------------

    def start(self) -> None:
        """Run the jobs in a daemon thread until `stop` (a no-op when already running)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._loop, name=f"credwarden-scheduler[{self.node}]", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> bool:
        """Start no more jobs, let a running one finish and the thread end; False when it is
        still running after `timeout` seconds."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                return False
            self._thread = None
        for worker in self._workers.values():
            worker.close()
        return True

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._pass(stoppable=True)
            except Exception as exc:  # never let the thread die
                logger.error("scheduler pass failed: %s", _describe(exc))
            self._stop.wait(self._tick)

    # -- one pass --------------------------------------------------------------------------

    def run_pending(self) -> list[str]:
        """Run, once, each job due on this node; the names of those it ran (failed ones too)."""
        return self._pass(stoppable=False)

    def _pass(self, *, stoppable: bool) -> list[str]:
        ran: list[str] = []
        for job in self._jobs:
            if stoppable and self._stop.is_set():
                break
            try:
                if self._run_if_due(job):
                    ran.append(job.name)
            except Exception as exc:  # the store around the job failed: retried next tick
                logger.error("job %s: could not be scheduled: %s", job.name, _describe(exc))
        return ran

    def _run_if_due(self, job: Job) -> bool:
        state = self._states[job.name]
        if time.time() < state.not_before:
            return False
        if not state.mutex.acquire(blocking=False):
            return False  # running in another thread of this process
        try:
            if state.stray is not None:
                if not state.stray.done.is_set():
                    return False  # its last run timed out and goes on: never two here at once
                state.stray = None
                logger.info("job %s: the run that timed out has ended (outcome dropped)", job.name)
            if not job.shared:
                self._execute(job, state, iso(utcnow()))
                state.not_before = time.time() + job.every
                return True
            with ExitStack() as stack:
                try:
                    stack.enter_context(
                        self._host.records.store.lock(f"job:{job.name}", timeout=LOCK_WAIT_S)
                    )
                except LockTimeout:
                    return False  # another node is running it
                return self._run_shared(job, state)
        finally:
            state.mutex.release()

    def _run_shared(self, job: Job, state: _State) -> bool:
        """Under the job's lock: run it if its last run finished `every` seconds ago and no
        other node is running it (by its heartbeat)."""
        store = self._host.records.store
        with store.transaction(write=False) as tx:
            rec = tx.get(NS_JOB, job.name)
        lease = _decode(job.name, rec.body) if rec is not None else {}
        finished_ts = _timestamp(lease.get("finished_at"))
        finished = lease["finished_at"] if finished_ts is not None else None
        if self._running_elsewhere(lease, finished_ts):
            logger.debug("job %s: running on another node (fresh heartbeat); skipped", job.name)
            return False
        if finished_ts is not None:
            due_at = finished_ts + job.every
            if time.time() < due_at:
                state.not_before = due_at  # only a later run can move it
                return False
        started = iso(utcnow())
        body: dict[str, Any] = {"started_at": started, "node": self.node, "finished_at": finished}
        try:
            with store.transaction() as tx:
                rev = tx.put(NS_JOB, job.name, _encode(body), rev=rec.rev if rec else 0)
        except Conflict:  # written without the lock: someone else's business this time
            logger.warning("job %s: its lease record changed under the lock; skipped", job.name)
            return False
        fenced = False

        def beat() -> bool:
            """Write the heartbeat; False once another node has written the lease."""
            nonlocal rev, fenced
            body["heartbeat_at"] = iso(utcnow())
            try:
                with store.transaction() as tx:
                    rev = tx.put(NS_JOB, job.name, _encode(body), rev=rev)
            except Conflict:
                fenced = True
                logger.warning(
                    "job %s: another node wrote its lease record during this run; "
                    "heartbeat stopped",
                    job.name,
                )
                return False
            except CredwardenError as exc:  # the store is away: try again at the next beat
                logger.warning("job %s: heartbeat not written: %s", job.name, _describe(exc))
            return True

        outcome = self._execute(job, state, started, beat)
        try:
            if fenced:
                raise Conflict("the lease record was taken over")
            with store.transaction() as tx:
                tx.put(NS_JOB, job.name, _encode({**body, **outcome}), rev=rev)
        except Conflict:
            logger.warning(
                "job %s: another node wrote its lease record during this run; "
                "this run's outcome is not recorded there",
                job.name,
            )
        state.not_before = parse_iso(outcome["finished_at"]).timestamp() + job.every
        return True

    def _running_elsewhere(self, lease: dict[str, Any], finished_ts: float | None) -> bool:
        """Whether the lease shows a run started on another node that still heart-beats.

        The heartbeat is the other node's clock (as written, an ISO timestamp) read against
        this node's: this assumes the nodes' clocks agree within a few seconds (NTP). A
        heartbeat counts as fresh within STALE_BEATS heartbeats either side of now, so a clock
        up to about (STALE_BEATS - 1) heartbeats behind (4 s by default) still fences; one
        further off lets a live node's run look dead, and the job may then run twice at once.
        """
        started_ts = _timestamp(lease.get("started_at"))
        if started_ts is None or (finished_ts is not None and finished_ts >= started_ts):
            return False  # not running (or ended)
        if lease.get("node") == self.node:
            return False  # this node's runs of a job are one at a time (the job's mutex)
        beat_ts = _timestamp(lease.get("heartbeat_at"))
        if beat_ts is None:
            beat_ts = started_ts
        return abs(time.time() - beat_ts) <= STALE_BEATS * self._heartbeat

    def _execute(
        self,
        job: Job,
        state: _State,
        started: str,
        beat: Callable[[], bool] | None = None,
    ) -> dict[str, Any]:
        """Run the job on its worker; {"finished_at", "seconds", and "result" or "error"}."""
        state.running, state.started_at, state.node = True, started, self.node
        t0 = time.monotonic()
        outcome: dict[str, Any]
        try:
            result = self._wait(job, state, t0, beat)
            if not isinstance(result, dict):
                raise TypeError("a job must return a dict")
            json.dumps(result)  # must fit the lease record
            outcome = {"result": result}
        except _TimedOut:
            outcome = {"error": {"type": "Timeout"}}
            logger.error(
                "job %s did not finish within %g s: recorded as timed out, left running in "
                "the background",
                job.name,
                job.run_limit(),
            )
        except Exception as exc:
            outcome = {"error": _error_of(exc)}
            logger.error(
                "job %s failed after %.3f s: %s", job.name, time.monotonic() - t0, _describe(exc)
            )
        else:
            logger.debug("job %s done in %.3f s", job.name, time.monotonic() - t0)
        finally:
            state.running = False
        outcome["finished_at"] = iso(utcnow())
        outcome["seconds"] = round(time.monotonic() - t0, 3)
        state.finished_at = outcome["finished_at"]
        state.result = outcome.get("result")
        state.error = outcome.get("error")
        return outcome

    def _wait(
        self, job: Job, state: _State, t0: float, beat: Callable[[], bool] | None
    ) -> dict[str, Any]:
        """Hand the job to its worker and wait for it, calling `beat` every heartbeat (until it
        returns False); its exception is raised here, _TimedOut past the job's max_run (the
        run, which no one can stop, is kept as the job's stray)."""
        call = self._workers[job.name].submit(lambda: job.run(self._host))
        deadline = t0 + job.run_limit()
        next_beat = t0 + self._heartbeat
        while not call.done.is_set():
            now = time.monotonic()
            if now >= deadline:
                state.stray = call
                raise _TimedOut
            if beat is not None and now >= next_beat:
                if not beat():
                    beat = None
                next_beat = time.monotonic() + self._heartbeat
            until = deadline if beat is None else min(deadline, next_beat)
            call.done.wait(max(0.0, until - time.monotonic()))
        if call.error is not None:
            raise call.error
        return call.result

    # -- status ----------------------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        """Per job: its last run (across nodes for a shared job, from its lease record) and
        whether this node is running it now."""
        leases: dict[str, dict[str, Any]] = {}
        if any(j.shared for j in self._jobs):
            try:
                with self._host.records.store.transaction(write=False) as tx:
                    leases = {r.key: _decode(r.key, r.body) for r in tx.list(NS_JOB)}
            except CredwardenError as exc:
                logger.warning("job status: cannot read the lease records: %s", _describe(exc))
        out = []
        for job in self._jobs:
            state = self._states[job.name]
            lease = leases.get(job.name) if job.shared else None
            if lease is None:
                lease = {
                    "started_at": state.started_at,
                    "finished_at": state.finished_at,
                    "node": state.node,
                    "result": state.result,
                    "error": state.error,
                }
            out.append(
                {
                    "name": job.name,
                    "every": job.every,
                    "shared": job.shared,
                    "last_started_at": lease.get("started_at"),
                    "last_finished_at": lease.get("finished_at"),
                    "last_node": lease.get("node"),
                    "last_result": lease.get("result"),
                    "last_error": lease.get("error"),
                    "running": state.busy(),
                }
            )
        return out


# -- the default jobs ------------------------------------------------------------------------


def default_jobs() -> list[Job]:
    """The jobs `credwarden serve` runs."""
    return [
        Job("refresh", REFRESH_EVERY_S, refresh_job),
        Job("expiry-sweep", SWEEP_EVERY_S, expiry_sweep_job),
        Job("token-use", TOKEN_USE_EVERY_S, token_use_job, shared=False),
    ]


def refresh_job(w: JobHost) -> dict[str, Any]:
    """Refresh the OAuth connections expiring within REFRESH_WITHIN_S. `refresh_due` reports
    per connection only whether it now holds a valid token, not whether it was refreshed."""
    results = w.refresh_due(within=REFRESH_WITHIN_S)
    failures = [
        {"address": r.get("address"), "error": r.get("error")} for r in results if not r.get("ok")
    ]
    return {
        "checked": len(results),
        "ok": len(results) - len(failures),
        "failed": len(failures),
        "failures": failures,
    }


def expiry_sweep_job(w: JobHost) -> dict[str, Any]:
    """Count the credentials that are expiring, expired, due for rotation or need
    re-authentication, and raise an alert for each one (to `w.alerts`)."""
    counts = dict.fromkeys(ALERT_STATES, 0)
    alerted = sink_errors = 0
    for info in w.list():
        if info.health not in counts:
            continue
        counts[info.health] += 1
        detail = {
            "health": info.health,
            "expires_at": info.expires_at,
            "rotated_at": info.rotated_at,
            "rotate_every": info.rotate_every,
        }
        try:
            w.alerts.alert(info.health, info.address, detail)
            alerted += 1
        except Exception as exc:  # one failing alert does not hide the others
            sink_errors += 1
            logger.warning("alert sink failed for %s: %s", info.address, _describe(exc))
    return {**counts, "alerted": alerted, "sink_errors": sink_errors}


def token_use_job(w: JobHost) -> dict[str, Any]:
    """Write this node's in-memory API token last-use times."""
    return {"flushed": w.flush_token_use()}


# -- helpers ---------------------------------------------------------------------------------


def _error_of(exc: BaseException) -> dict[str, Any]:
    """An error fit for the record: credwarden's own messages are safe to show; anything else
    only by type, as its text may carry a secret."""
    if isinstance(exc, CredwardenError):
        return {"type": type(exc).__name__, "code": exc.code, "message": exc.message}
    return {"type": type(exc).__name__}


def _describe(exc: BaseException) -> str:
    err = _error_of(exc)
    return f"{err['type']}: {err['message']}" if "message" in err else err["type"]


def _timestamp(text: object) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return parse_iso(text).timestamp()
    except ValueError:
        return None


def _encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def _decode(name: str, body: bytes) -> dict[str, Any]:
    """A lease record; an unreadable one counts as none (the next run rewrites it)."""
    try:
        lease = rows.document(body, rows.record_name(NS_JOB, name))
    except StoreCorrupt:
        lease = None
    if not isinstance(lease, dict):
        logger.warning("job %s: unreadable lease record, ignored", name)
        return {}
    return lease
