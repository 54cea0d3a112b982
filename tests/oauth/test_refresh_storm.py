"""Invariant 3 against a real provider: one refresh at a time across threads and processes.

oidc-provider rotates refresh tokens and revokes the whole grant when an old one is reused,
so a second, uncoordinated refresh would leave every caller with a dead token.
"""

from __future__ import annotations

import multiprocessing
import os
import time

import pytest

from credwarden import Warden
from credwarden.timeutil import parse_iso
from tests.oauth.conftest import APP_SECRET, CONN, connect, register
from tests.oauth.storm_worker import storm
from tests.peers.oidc import introspect

TTL = 10
LEEWAY = 4
PROCESSES = 3
THREADS = 12


def _stale_at(w: Warden) -> float:
    expires = w.describe(CONN).fields["expires_at"]
    assert expires
    return parse_iso(expires).timestamp() - LEEWAY + 0.3


def _run_storm(w: Warden, processes: int, threads: int) -> list[str]:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    env = {k: v for k, v in os.environ.items() if k.startswith("CREDWARDEN_")}
    start_at = _stale_at(w)
    procs = [
        ctx.Process(target=storm, args=(env, CONN, threads, start_at, LEEWAY, out))
        for _ in range(processes)
    ]
    for p in procs:
        p.start()
    tokens: list[str] = []
    for _ in procs:
        tokens.extend(out.get(timeout=120))
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    out.close()
    out.join_thread()
    return tokens


@pytest.mark.timeout(240)
def test_storm_refreshes_exactly_once_across_processes(warden: Warden, provider_factory) -> None:  # type: ignore[no-untyped-def]
    p = provider_factory(access_ttl=TTL)
    register(warden, p)
    connect(warden, p)
    first = warden.read(CONN).values["access_token"]

    tokens = _run_storm(warden, PROCESSES, THREADS)
    assert not [t for t in tokens if t.startswith("ERROR")], tokens[:3]
    assert len(tokens) == PROCESSES * THREADS
    assert p.count("refresh_token") == 1
    assert len(set(tokens)) == 1 and tokens[0] != first.reveal()  # type: ignore[union-attr]
    assert introspect(p, tokens[0], "app", APP_SECRET)["active"] is True

    # The second expiry refreshes again, once, with the rotated refresh token.
    tokens = _run_storm(warden, 2, THREADS)
    assert not [t for t in tokens if t.startswith("ERROR")], tokens[:3]
    assert p.count("refresh_token") == 2
    assert len(set(tokens)) == 1
    assert introspect(p, tokens[0], "app", APP_SECRET)["active"] is True
    assert warden.describe(CONN).health == "ok"
    assert warden.verify_audit().ok


def test_threads_in_one_process_share_one_refresh(warden: Warden, provider_factory) -> None:  # type: ignore[no-untyped-def]
    import threading

    p = provider_factory(access_ttl=TTL, token_delay_ms=300)  # a slow provider widens the race
    register(warden, p)
    connect(warden, p)
    time.sleep(max(0.0, _stale_at(warden) - time.time()))
    results: list[str] = []

    def call() -> None:
        results.append(warden.access_token(CONN, leeway=LEEWAY).reveal())

    threads = [threading.Thread(target=call) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert p.count("refresh_token") == 1
    assert len(set(results)) == 1
    assert introspect(p, results[0], "app", APP_SECRET)["active"] is True
