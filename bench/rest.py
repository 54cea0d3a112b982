"""REST read benchmark: authenticated, audited `GET .../value` against a Starlette hello-world.

Both servers run under uvicorn (uvloop + httptools, no access log) in their own
process; the load comes from a third process over loopback (bench/loadgen.py:
keep-alive HTTP/1.1, `--connections` at once, one request in flight each). Rounds
alternate between the two so machine noise hits both alike. Every credwarden read
is checked against the grant and audited (hash-chained, committed) before its
value is sent; the bench counts the audit events afterwards and verifies the chain.

Targets (2-core machine): >= 5,000 reads/s, p99 <= 20 ms, >= 0.45x the hello-world.

    python bench/rest.py [--seconds 5] [--rounds 3] [--connections 32] [--workers 1]
                         [--database-url URL] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hello import STARLETTE_APP, serve_in_process, stop
from loadgen import LoadResult, run_load

ADDRESS = "prod/stripe/billing"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(env: dict[str, str]) -> str:
    """A store with one key, a workflow principal granted `read` on prod/stripe/*, its token."""
    code = (
        "from credwarden import Warden\n"
        "w, _ = Warden.init()\n"
        f"w.add({ADDRESS!r}, 'api_key', {{'api_key': 'sk_live_' + 'x' * 40}})\n"
        "w.add_principal('nightly-invoices', type='workflow', owner='finance-ops')\n"
        "w.grant('nightly-invoices', 'prod/stripe/*', actions='read')\n"
        "print(w.issue_token('nightly-invoices')[1].reveal())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    )
    return out.stdout.strip().splitlines()[-1]


def start_credwarden(env: dict[str, str], port: int, workers: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from credwarden.cli.main import main; sys.exit(main())",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if sock.recv(16).startswith(b"HTTP/"):
                    if workers > 1:
                        time.sleep(3.0)  # every worker imported and listening
                    return proc
                raise OSError
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop(proc)
                raise RuntimeError("credwarden serve did not start") from None
            time.sleep(0.1)


def audited(env: dict[str, str]) -> tuple[int, bool]:
    code = (
        "from credwarden import Warden\n"
        "w = Warden.open()\n"
        "n = sum(1 for e in w.audit_events(principal='nightly-invoices') if e.action == 'read')\n"
        "print(n, w.verify_audit().ok)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
    )
    n, ok = out.stdout.split()
    return int(n), ok == "True"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--database-url", default=None)
    ap.add_argument(
        "--workers", type=int, default=1, help="uvicorn worker processes, for both servers"
    )
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    home = tempfile.mkdtemp(prefix="cw-bench-rest-")
    env = {**os.environ, "CREDWARDEN_HOME": home, "PYTHONWARNINGS": "ignore"}
    if args.database_url:
        env["CREDWARDEN_DATABASE_URL"] = args.database_url
    token = seed(env)
    cw_port, hello_port = free_port(), free_port()
    cw = start_credwarden(env, cw_port, args.workers)
    hello = serve_in_process(STARLETTE_APP, port=hello_port, workers=args.workers)
    ours: list[LoadResult] = []
    base: list[LoadResult] = []
    try:
        url = f"http://127.0.0.1:{cw_port}/v1/credentials/{ADDRESS}/value"
        probe = run_load(
            url,
            connections=1,
            seconds=0.3,
            warmup=0.2,
            headers={"Authorization": f"Bearer {token}"},
        )
        if probe.non_2xx or probe.errors:
            raise SystemExit("credwarden refused the benchmark's read (grant or token)")
        for _ in range(args.rounds):
            base.append(
                run_load(
                    f"http://127.0.0.1:{hello_port}/hello",
                    connections=args.connections,
                    seconds=args.seconds,
                )
            )
            ours.append(
                run_load(
                    url,
                    connections=args.connections,
                    seconds=args.seconds,
                    headers={"Authorization": f"Bearer {token}"},
                )
            )
    finally:
        stop(hello)
        stop(cw)
    events, chain_ok = audited(env)
    served = sum(r.requests for r in ours) + probe.requests

    def med(rs: list[LoadResult], field: str) -> float:
        return float(statistics.median(getattr(r, field) for r in rs))

    result = {
        "connections": args.connections,
        "workers": args.workers,
        "rounds": args.rounds,
        "seconds": args.seconds,
        "store": "postgresql" if args.database_url else "sqlite",
        "credwarden": {f: med(ours, f) for f in ("rps", "p50_ms", "p99_ms")},
        "hello_world": {f: med(base, f) for f in ("rps", "p50_ms", "p99_ms")},
        "ratio": med(ours, "rps") / med(base, "rps"),
        "non_2xx": sum(r.non_2xx for r in ours),
        "errors": sum(r.errors for r in ours),
        "read_events": events,
        "reads_answered_at_least": served,
        "audit_chain_ok": chain_ok,
        "per_round": [
            {"credwarden_rps": o.rps, "hello_rps": b.rps, "credwarden_p99_ms": o.p99_ms}
            for o, b in zip(ours, base, strict=True)
        ],
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    c, h = result["credwarden"], result["hello_world"]
    print(
        f"REST read, {args.connections} connections, {args.workers} worker(s) each,"
        f" {args.rounds} x {args.seconds:g} s, {result['store']} store (median of rounds)"
    )
    print(
        f"  credwarden GET .../value : {c['rps']:8.0f} reads/s  p50 {c['p50_ms']:.2f} ms"
        f"  p99 {c['p99_ms']:.2f} ms"
    )
    print(
        f"  Starlette hello-world    : {h['rps']:8.0f} req/s    p50 {h['p50_ms']:.2f} ms"
        f"  p99 {h['p99_ms']:.2f} ms"
    )
    print(f"  ratio {result['ratio']:.2f}x   (targets: >= 5000 reads/s, p99 <= 20 ms, >= 0.45x)")
    print(
        f"  audit: {events} read events for >= {served} reads answered;"
        f" chain {'verifies' if chain_ok else 'BROKEN'}; non-2xx {result['non_2xx']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
