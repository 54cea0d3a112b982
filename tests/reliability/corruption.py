"""A populated store to damage, and the commands whose answers over it are judged: a correct
answer, or one clean error line with a documented exit code; never a traceback, never a
wrong secret value. Shared by the malformed-row tests and the corruption fuzzer."""

from __future__ import annotations

import os
import shutil
import sqlite3
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from starlette.testclient import TestClient

from tests.cli.conftest import _Main
from tests.rawdb import raw

VALUES = {"dev/app/f1": "fuzz-SECRET-three", "dev/app/f2#password": "fuzz-SECRET-two"}
OLD_VALUE = "fuzz-SECRET-one"
COMMANDS: tuple[tuple[str, ...], ...] = (
    ("get", "dev/app/f1"),
    ("get", "dev/app/f2#password"),
    ("list",),
    ("show", "dev/app/f1"),
    ("history", "dev/app/f1"),
    ("audit",),
    ("audit", "verify"),
)
DOCUMENTED = {1, 2, 3, 4, 5, 6, 7, 8}


@dataclass
class Tally:
    """What the runs over damaged stores came to."""

    trials: int = 0
    runs: int = 0
    ok: int = 0
    clean_errors: int = 0
    tracebacks: list[str] = field(default_factory=list)
    wrong_values: list[str] = field(default_factory=list)

    def line(self, what: str) -> str:
        return (
            f"{what}: {self.trials} damaged stores, {self.runs} runs: {self.ok} answered,"
            f" {self.clean_errors} clean errors, {len(self.tracebacks)} tracebacks,"
            f" {len(self.wrong_values)} wrong values"
        )


class Store:
    """A store on disk (SQLite) or in a PostgreSQL database, and how to run commands on it."""

    def __init__(self, home: Path, url: str) -> None:
        self.home = home
        self.url = url
        self.token = ""

    def env(self) -> dict[str, str | None]:
        env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("CREDWARDEN_")}
        env["CREDWARDEN_HOME"] = str(self.home)
        env["CREDWARDEN_DATABASE_URL"] = self.url
        return env

    def cli(self, *args: str, input: str | None = None) -> Any:
        return CliRunner(catch_exceptions=True).invoke(
            _Main(),  # type: ignore[arg-type]
            list(args),
            input=input,
            env=self.env(),
            prog_name="credwarden",
        )


def populate(home: Path, url: str) -> Store:
    """Two credentials (one with two versions), a principal with a token and a grant, a second
    KEK term, usage folded, and the audit events all of that wrote."""
    s = Store(home, url)

    def ok(*args: str, input: str | None = None) -> Any:
        r = s.cli(*args, input=input)
        assert r.exit_code == 0, (args, r.output, r.exception)
        return r

    ok("init")
    ok("add", "dev/app/f1", "--kind", "api_key", "--stdin", input=OLD_VALUE + "\n")
    ok("add", "dev/app/f2", "--kind", "basic", "--field", "username=bob", "--field",
       "password=" + VALUES["dev/app/f2#password"])  # fmt: skip
    ok("update", "dev/app/f1", "--stdin", input=VALUES["dev/app/f1"] + "\n")
    ok("principal", "add", "etl", "--type", "workflow")
    s.token = ok("principal", "token", "etl").stdout.strip().splitlines()[-1]
    ok("grant", "etl", "dev/*", "--actions", "read,describe")
    ok("key", "rotate")
    ok("get", "dev/app/f1")
    ok("list")  # folds usage: a cursor and usage records
    if url.startswith("sqlite:///"):
        c = sqlite3.connect(url[len("sqlite:///") :])
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        c.close()
    return s


def copy_sqlite(src: Store, home: Path) -> Store:
    """A copy of a SQLite store (database and key file) under `home`."""
    shutil.copytree(src.home, home)
    db = home / "credwarden.db"
    out = Store(home, f"sqlite:///{db}")
    out.token = src.token
    return out


def judge(s: Store, tally: Tally, label: str, *, rest: bool = True) -> None:
    """Run every command (and a REST read) on `s` and add up how each ended."""
    tally.trials += 1
    for args in COMMANDS:
        tally.runs += 1
        r = s.cli(*args)
        what = f"{label}: credwarden {' '.join(args)}"
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            tb = "".join(traceback.format_exception(r.exception))
            tally.tracebacks.append(f"{what}: {tb[-600:]}")
            continue
        if "Traceback" in r.stderr:
            tally.tracebacks.append(f"{what}: {r.stderr[-600:]}")
            continue
        if r.exit_code == 0:
            tally.ok += 1
            if args[0] == "get" and r.stdout != VALUES[args[1]] + "\n":
                tally.wrong_values.append(f"{what}: printed {len(r.stdout)} other characters")
            continue
        errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
        tampered = args[:2] == ("audit", "verify") and r.exit_code == 1 and "TAMPERED" in r.stdout
        if tampered or (r.exit_code in DOCUMENTED and len(errors) == 1):
            tally.clean_errors += 1
        else:
            tally.tracebacks.append(f"{what}: exit {r.exit_code}, stderr {r.stderr[-300:]!r}")
    if rest:
        tally.runs += 1
        _rest_read(s, tally, label)


def _rest_read(s: Store, tally: Tally, label: str) -> None:
    from credwarden import Warden
    from credwarden.api.server import build
    from credwarden.errors import CredwardenError

    what = f"{label}: GET /v1/credentials/dev/app/f1/value"
    try:
        w = Warden.open_local(database_url=s.url, home=str(s.home))
    except CredwardenError:
        tally.clean_errors += 1  # `serve` would say so and not start
        return
    except Exception:
        tally.tracebacks.append(f"{what} (opening): {traceback.format_exc()[-600:]}")
        return
    try:
        with TestClient(build(w), raise_server_exceptions=False) as c:
            resp = c.get(
                "/v1/credentials/dev/app/f1/value", headers={"Authorization": f"Bearer {s.token}"}
            )
    except Exception:
        tally.tracebacks.append(f"{what}: {traceback.format_exc()[-600:]}")
        return
    finally:
        w.close()
    body = resp.text
    if resp.status_code == 200:
        tally.ok += 1
        if resp.json() != {"api_key": VALUES["dev/app/f1"]}:
            tally.wrong_values.append(f"{what}: another value")
        return
    try:
        shape = resp.json()
        assert {"code", "message", "exit_code"} <= set(shape)
        assert "Traceback" not in body
    except Exception:
        tally.tracebacks.append(f"{what}: {resp.status_code} {body[:300]!r}")
        return
    tally.clean_errors += 1


@contextmanager
def restored(s: Store) -> Iterator[None]:
    """Put every row of the store back as it was when the block began."""
    with raw(s.url) as db:
        records = db.execute("SELECT ns, key, rev, body FROM records")
        events = db.execute("SELECT seq, body, hash FROM audit_events")
    try:
        yield
    finally:
        with raw(s.url) as db:
            db.execute("DELETE FROM records")
            db.execute("DELETE FROM audit_events")
            for row in records:
                db.execute("INSERT INTO records (ns, key, rev, body) VALUES (?, ?, ?, ?)", row)
            for row in events:
                db.execute("INSERT INTO audit_events (seq, body, hash) VALUES (?, ?, ?)", row)
