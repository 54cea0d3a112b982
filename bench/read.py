"""Read-path benchmark: `Warden.get` against a hand-written floor, and a cold `credwarden get`.

In-process: `Warden.get` (access check + point read + envelope decrypt + durable,
hash-chained audit event) against the least a correct implementation must do,
written by hand here: a raw sqlite3 point read, AES-GCM unwrap of the data key
and decrypt of the value, and a hash-chained audit insert committed per read,
on the same WAL + synchronous=NORMAL settings. Targets: ratio >= 0.5.

Cold start: `credwarden get ADDRESS` as a new process against `python -c pass`,
timed the same way, interleaved. Target: <= 8x.

    python bench/read.py [--seconds 3] [--rounds 3] [--cold-runs 40] [--json]
"""

from __future__ import annotations

import argparse
import compileall
import hashlib
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ADDRESS = "prod/stripe/billing"
VALUE = "sk_live_" + "x" * 40


class Floor:
    """The hand-written minimum: point read, unwrap + decrypt, chained audit insert, commit."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = NORMAL")
        self.db.execute("CREATE TABLE secrets (address TEXT PRIMARY KEY, dek BLOB, ct BLOB)")
        self.db.execute(
            "CREATE TABLE audit (seq INTEGER PRIMARY KEY, body TEXT, prev TEXT, hash TEXT)"
        )
        self.kek = AESGCM(os.urandom(32))
        dek = os.urandom(32)
        n1, n2 = os.urandom(12), os.urandom(12)
        wrapped = n1 + self.kek.encrypt(n1, dek, b"dek")
        ct = n2 + AESGCM(dek).encrypt(n2, VALUE.encode(), b"field")
        self.db.execute("INSERT INTO secrets VALUES (?, ?, ?)", (ADDRESS, wrapped, ct))

    def get(self, address: str) -> str:
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        wrapped, ct = db.execute(
            "SELECT dek, ct FROM secrets WHERE address = ?", (address,)
        ).fetchone()
        dek = self.kek.decrypt(wrapped[:12], wrapped[12:], b"dek")
        value = AESGCM(dek).decrypt(ct[:12], ct[12:], b"field").decode()
        row = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        seq, prev = (row[0] + 1, row[1]) if row else (1, "0" * 64)
        body = json.dumps(
            {"seq": seq, "ts": time.time(), "action": "read", "address": address},
            separators=(",", ":"),
            sort_keys=True,
        )
        digest = hashlib.sha256((prev + body).encode()).hexdigest()
        db.execute("INSERT INTO audit VALUES (?, ?, ?, ?)", (seq, body, prev, digest))
        db.execute("COMMIT")
        return value

    def close(self) -> None:
        self.db.close()


def rate(fn: Callable[[str], object], seconds: float) -> float:
    """Reads per second of `fn` over about `seconds`."""
    n, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(100):
            fn(ADDRESS)
        n += 100
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start)


def cold_start(runs: int, home: Path) -> dict[str, float]:
    """Median wall time of a new process: `credwarden get` vs `python -c pass`, interleaved."""
    exe = Path(sys.executable)
    cli = exe.parent / "credwarden"
    env = {**os.environ, "CREDWARDEN_HOME": str(home)}
    baseline, get = [], []
    for cmd, sink in [([str(exe), "-c", "pass"], baseline), ([str(cli), "get", ADDRESS], get)]:
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, check=True)  # warm the caches
        sink.clear()
    for _ in range(runs):
        for cmd, sink in [([str(exe), "-c", "pass"], baseline), ([str(cli), "get", ADDRESS], get)]:
            t = time.perf_counter()
            out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, check=True)
            sink.append(time.perf_counter() - t)
            if sink is get and out.stdout.decode().strip() != VALUE:
                raise SystemExit("credwarden get printed the wrong value")
    b, g = statistics.median(baseline), statistics.median(get)
    return {"python_pass_ms": b * 1e3, "credwarden_get_ms": g * 1e3, "ratio": g / b}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--cold-runs", type=int, default=40)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    # The package must be byte-compiled, as an installed wheel is (PYTHONDONTWRITEBYTECODE
    # may be set, and then a source checkout would be re-compiled on every cold start).
    import credwarden

    compileall.compile_dir(os.path.dirname(credwarden.__file__), quiet=1)

    tmp = Path(tempfile.mkdtemp(prefix="cw-bench-"))
    try:
        home = tmp / "home"
        for name in [n for n in os.environ if n.startswith("CREDWARDEN_")]:
            del os.environ[name]
        os.environ["CREDWARDEN_HOME"] = str(home)
        from credwarden import Warden

        w, _ = Warden.init(source="sdk")
        w.add(ADDRESS, "api_key", {"api_key": VALUE})
        assert w.get(ADDRESS).reveal() == VALUE
        floor = Floor(tmp / "floor.db")
        assert floor.get(ADDRESS) == VALUE

        floor_rates, warden_rates = [], []
        for _ in range(args.rounds):
            floor_rates.append(rate(floor.get, args.seconds))
            warden_rates.append(rate(w.get, args.seconds))
        floor.close()
        w.close()
        f, g = statistics.median(floor_rates), statistics.median(warden_rates)
        cold = cold_start(args.cold_runs, home)
        result = {
            "floor_reads_per_s": round(f),
            "warden_reads_per_s": round(g),
            "ratio": round(g / f, 3),
            "target_ratio": 0.5,
            "cold_python_pass_ms": round(cold["python_pass_ms"], 1),
            "cold_credwarden_get_ms": round(cold["credwarden_get_ms"], 1),
            "cold_ratio": round(cold["ratio"], 2),
            "target_cold_ratio": 8.0,
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"in-process reads/s   floor {f:>9,.0f}   Warden.get {g:>9,.0f}"
        f"   ratio {g / f:.2f} (target >= 0.5)"
    )
    print(
        f"cold start (median)  python -c pass {cold['python_pass_ms']:.1f} ms"
        f"   credwarden get {cold['credwarden_get_ms']:.1f} ms"
        f"   ratio {cold['ratio']:.2f}x (target <= 8x)"
    )


if __name__ == "__main__":
    main()
