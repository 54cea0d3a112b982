"""Two real `credwarden serve` processes over one PostgreSQL store.

Each node is a subprocess on its own loopback port, sharing the database and the master key
file (one CREDWARDEN_HOME). Checked: writes and updates made on one node are read on the other
at once, a revoked grant stops reads on the other node within about a second, a refresh storm
split across both nodes refreshes the OAuth connection exactly once at the real provider, the
scheduler runs each shared job once across the nodes, and a node killed with SIGKILL leaves
the other one serving.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from credwarden import Warden
from credwarden.lifecycle.scheduler import NS_JOB
from credwarden.timeutil import parse_iso
from tests.oauth.conftest import APP_SECRET, CONN, connect, register, start_provider
from tests.peers.oidc import OidcProvider, introspect
from tests.pg import fresh_database

pytestmark = pytest.mark.postgres

CLI = str(Path(sys.executable).with_name("credwarden"))
READY_TIMEOUT = 30.0
REVOKE_WITHIN = 1.5  # access state is re-read at most every second on each node
TTL = 10  # the provider's access-token lifetime
LEEWAY = 4  # `min_ttl` of the storm's requests
PER_NODE = 40  # concurrent token requests per node


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Node:
    """One `credwarden serve` subprocess and an HTTP client for it."""

    def __init__(self, name: str, home: Path, database_url: str, *, scheduler: bool) -> None:
        self.name = name
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CREDWARDEN_")}
        env.update(CREDWARDEN_HOME=str(home), CREDWARDEN_DATABASE_URL=database_url)
        argv = [CLI, "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        if not scheduler:
            argv.append("--no-scheduler")
        self.log_path = home.parent / f"serve-{name}-{self.port}.log"
        self._log: IO[bytes] | None = open(self.log_path, "wb")  # noqa: SIM115
        try:
            self.proc = subprocess.Popen(
                argv, env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
            )
        except BaseException:
            self._log.close()
            raise
        self.http = httpx.Client(
            base_url=self.url,
            trust_env=False,
            timeout=60.0,
            limits=httpx.Limits(max_connections=PER_NODE + 10, max_keepalive_connections=0),
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def wait_ready(self, deadline: float) -> None:
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"node {self.name} exited ({self.proc.returncode}):\n{self.log()}"
                )
            try:
                r = self.http.get("/healthz", timeout=2.0)
                if r.status_code == 200 and r.json()["store_reachable"] is True:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"node {self.name} not healthy in time:\n{self.log()}")
            time.sleep(0.1)

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Idempotent: SIGTERM (uvicorn shuts down gracefully), SIGKILL if it lingers."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.http.close()
        if self._log is not None:
            self._log.close()
            self._log = None


def _start(cluster: Cluster, *names: str, scheduler: bool) -> list[Node]:
    nodes: list[Node] = []
    try:
        for name in names:
            nodes.append(Node(name, cluster.home, cluster.database_url, scheduler=scheduler))
        deadline = time.monotonic() + READY_TIMEOUT
        for n in nodes:
            n.wait_ready(deadline)
    except BaseException:
        for n in nodes:
            n.stop()
        raise
    return nodes


class Cluster:
    """The shared store: its URL, the home with the master key, the owner's facade, tokens."""

    def __init__(self, database_url: str, home: Path, warden: Warden) -> None:
        self.database_url = database_url
        self.home = home
        self.warden = warden
        self.tokens: dict[str, str] = {}

    def auth(self, principal: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[principal]}"}

    def events(self, **filters: Any) -> list[Any]:
        """Audit events, read by a fresh facade (as the local owner) over the same store."""
        with Warden.open(home=self.home, database_url=self.database_url) as w:
            return [e for e in w.audit_events(**filters) if e.action != "audit.read"]

    def leases(self) -> dict[str, dict[str, Any]]:
        with (
            Warden.open(home=self.home, database_url=self.database_url) as w,
            w.records.store.transaction(write=False) as tx,
        ):
            return {r.key: json.loads(r.body) for r in tx.list(NS_JOB)}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A fresh PostgreSQL database with an initialised store and an admin API token."""
    with fresh_database() as url:
        home = tmp_path_factory.mktemp("multinode") / "home"
        w, report = Warden.init(home=home, database_url=url)
        try:
            assert report.created
            w.add_principal("admin", type="user", role="admin")
            c = Cluster(url, home, w)
            c.tokens["admin"] = w.issue_token("admin")[1].reveal()
            yield c
        finally:
            w.close()


@pytest.fixture(scope="module")
def pair(cluster: Cluster) -> Iterator[tuple[Node, Node]]:
    """Nodes A and B without the scheduler (the storm must be the only refresher)."""
    a, b = _start(cluster, "a", "b", scheduler=False)
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


@pytest.fixture(scope="module")
def scheduled_pair(cluster: Cluster) -> Iterator[tuple[Node, Node]]:
    """Nodes C and D, each running the scheduler."""
    c, d = _start(cluster, "c", "d", scheduler=True)
    try:
        yield c, d
    finally:
        c.stop()
        d.stop()


@pytest.fixture
def oidc() -> Iterator[OidcProvider]:
    p = start_provider(access_ttl=TTL)
    try:
        yield p
    finally:
        p.stop()


def _value(node: Node, address: str, headers: dict[str, str]) -> httpx.Response:
    return node.http.get(f"/v1/credentials/{address}/value", headers=headers)


# -- 1. writes, updates and revocations cross nodes ------------------------------------------


def test_writes_updates_and_revocations_cross_nodes(
    cluster: Cluster, pair: tuple[Node, Node]
) -> None:
    a, b = pair
    admin = cluster.auth("admin")
    addr = "dev/multi/db"

    r = a.http.post(
        "/v1/credentials",
        json={"address": addr, "kind": "api_key", "fields": {"api_key": "multi-v1"}},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    r = _value(b, addr, admin)  # written on A, read on B at once
    assert r.status_code == 200, r.text
    assert r.json() == {"api_key": "multi-v1"} and r.headers["x-credwarden-version"] == "1"
    r = _value(a, addr, admin)  # A has v1 in its caches now
    assert r.json() == {"api_key": "multi-v1"}

    r = b.http.patch(
        f"/v1/credentials/{addr}", json={"fields": {"api_key": "multi-v2"}}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2
    r = _value(a, addr, admin)  # updated on B, read on A at once (no stale cache)
    assert r.status_code == 200, r.text
    assert r.json() == {"api_key": "multi-v2"} and r.headers["x-credwarden-version"] == "2"

    # A principal, its grant and its token made on A work on B.
    r = a.http.post("/v1/principals", json={"name": "reader"}, headers=admin)
    assert r.status_code == 201, r.text
    r = a.http.post(
        "/v1/grants",
        json={"principal": "reader", "pattern": "dev/multi/*", "actions": ["read"]},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    r = a.http.post("/v1/principals/reader/tokens", json={}, headers=admin)
    assert r.status_code == 201, r.text
    reader = {"Authorization": f"Bearer {r.json()['token']}"}
    deadline = time.monotonic() + 3.0
    while (r := _value(b, addr, reader)).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert r.status_code == 200, r.text
    assert r.json() == {"api_key": "multi-v2"}

    # The grant revoked on A stops reads on B within REVOKE_WITHIN seconds.
    r = a.http.post(
        "/v1/grants/revoke", json={"principal": "reader", "pattern": "dev/multi/*"}, headers=admin
    )
    assert r.status_code == 200, r.text
    revoked_at = time.monotonic()
    while (r := _value(b, addr, reader)).status_code == 200:
        assert time.monotonic() - revoked_at < 3.0, "B kept serving a revoked grant"
        time.sleep(0.05)
    stopped_after = time.monotonic() - revoked_at
    assert r.status_code == 403, r.text
    assert r.json()["code"] and "multi-v2" not in r.text
    assert stopped_after <= REVOKE_WITHIN, f"B stopped reads only after {stopped_after:.2f} s"
    assert _value(a, addr, reader).status_code == 403
    assert _value(b, addr, admin).status_code == 200  # others unaffected


# -- 2. a refresh storm across both nodes -----------------------------------------------------


def test_refresh_storm_across_two_nodes_refreshes_once(
    cluster: Cluster, pair: tuple[Node, Node], oidc: OidcProvider
) -> None:
    w = cluster.warden
    register(w, oidc)
    connect(w, oidc)
    first = w.read(CONN).values["access_token"].reveal()  # type: ignore[union-attr]
    expires = w.describe(CONN).fields["expires_at"]
    assert expires
    start_at = parse_iso(expires).timestamp() - LEEWAY + 0.3  # inside the leeway: stale
    seq_before = max(e.seq for e in cluster.events())
    assert oidc.count("refresh_token") == 0

    admin = cluster.auth("admin")
    path = f"/v1/credentials/{CONN}/token"
    results: list[tuple[str, int, str]] = []
    lock = threading.Lock()
    nodes = [n for n in pair for _ in range(PER_NODE)]
    barrier = threading.Barrier(len(nodes))

    def call(node: Node) -> None:
        barrier.wait()
        time.sleep(max(0.0, start_at - time.time()))
        try:
            r = node.http.get(path, params={"min_ttl": LEEWAY}, headers=admin)
            out = (node.name, r.status_code, r.text)
        except httpx.HTTPError as exc:
            out = (node.name, 0, f"{type(exc).__name__}: {exc}")
        with lock:
            results.append(out)

    threads = [threading.Thread(target=call, args=(n,)) for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == 2 * PER_NODE
    failed = [r for r in results if r[1] != 200]
    assert not failed, failed[:3]
    tokens = {json.loads(text)["access_token"] for _, _, text in results}
    assert len(tokens) == 1, f"{len(tokens)} different access tokens handed out"
    token = tokens.pop()
    assert token != first
    assert {name for name, _, _ in results} == {"a", "b"}

    assert oidc.count("refresh_token") == 1  # the provider saw ONE refresh grant
    assert introspect(oidc, token, "app", APP_SECRET)["active"] is True

    events = [e for e in cluster.events(address=CONN) if e.seq > seq_before]
    refreshes = [e for e in events if e.action == "refresh"]
    assert [(e.result, e.principal, e.source) for e in refreshes] == [("ok", "admin", "api")]
    uses = [e for e in events if e.action == "use"]
    assert len(uses) == 2 * PER_NODE and {e.result for e in uses} == {"ok"}
    assert len({e.pid for e in uses}) == 2  # both nodes served (and audited) the storm
    # Both nodes took the refresh path (stale token, under the store lock): one refreshed, the
    # other found the new token on re-reading, and each handed it to its queued callers.
    assert {e.pid for e in uses if e.detail.get("after_refresh")} == {e.pid for e in uses}
    assert w.describe(CONN).health == "ok"
    assert w.verify_audit().ok


# -- 3. the scheduler across nodes, and a node killed ----------------------------------------


def test_scheduler_runs_each_shared_job_once(
    cluster: Cluster, scheduled_pair: tuple[Node, Node]
) -> None:
    c, d = scheduled_pair
    shared = {"refresh", "expiry-sweep"}  # every 30 s and every hour: due once, at start
    deadline = time.monotonic() + 15.0
    while True:
        leases = cluster.leases()
        if set(leases) >= shared and all(leases[j].get("finished_at") for j in shared):
            break
        assert time.monotonic() < deadline, (leases, c.log(), d.log())
        time.sleep(0.2)
    time.sleep(2.5)  # more than two scheduler ticks on each node: a second run would show

    host = socket.gethostname()
    nodes = {f"{host}:{c.pid}", f"{host}:{d.pid}"}
    leases = cluster.leases()
    assert set(leases) == shared  # "token-use" is per node: no lease
    for name in shared:
        lease = leases[name]
        assert lease["node"] in nodes, lease
        assert lease["finished_at"] >= lease["started_at"], lease
        assert "error" not in lease, lease
    assert leases["expiry-sweep"]["result"]["sink_errors"] == 0

    # Each run is audited once, as source "serve", by the node that ran it: the sweep's
    # `list` of every credential, and the refresh job's `list` of the oauth2 connections.
    lists = [e for e in cluster.events() if e.action == "list" and e.source == "serve"]
    sweeps = [e for e in lists if "kind" not in e.detail]
    refresh_lists = [e for e in lists if e.detail.get("kind") == "oauth2"]
    assert len(sweeps) == 1, sweeps
    assert len(refresh_lists) == 1, refresh_lists
    assert {e.pid for e in sweeps} <= {c.pid, d.pid}
    assert {e.pid for e in refresh_lists} <= {c.pid, d.pid}
    assert c.proc.poll() is None and d.proc.poll() is None


def test_survivor_serves_after_the_other_node_is_killed(
    cluster: Cluster, scheduled_pair: tuple[Node, Node]
) -> None:
    c, d = scheduled_pair
    admin = cluster.auth("admin")
    addr = "dev/multi/survivor"
    r = c.http.post(
        "/v1/credentials",
        json={"address": addr, "kind": "api_key", "fields": {"api_key": "before-kill"}},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    assert _value(d, addr, admin).json() == {"api_key": "before-kill"}

    c.kill9()
    assert c.proc.returncode == -signal.SIGKILL
    with pytest.raises(httpx.TransportError):
        c.http.get("/healthz", timeout=2.0)

    r = d.http.get("/healthz")
    assert r.status_code == 200 and r.json()["store_reachable"] is True
    r = d.http.patch(
        f"/v1/credentials/{addr}", json={"fields": {"api_key": "after-kill"}}, headers=admin
    )
    assert r.status_code == 200, r.text
    r = _value(d, addr, admin)
    assert r.status_code == 200 and r.json() == {"api_key": "after-kill"}
    r = d.http.post(
        "/v1/credentials",
        json={"address": "dev/multi/new", "kind": "api_key", "fields": {"api_key": "new"}},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    assert _value(d, "dev/multi/new", admin).json() == {"api_key": "new"}
    assert d.proc.poll() is None
    assert cluster.warden.verify_audit().ok
