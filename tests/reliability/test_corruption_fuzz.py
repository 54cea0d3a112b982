"""The corruption fuzzer: random damage to a populated store, then every reading command and
a REST read. Each must end in a correct answer or one clean error with a documented exit
code: 0 tracebacks, 0 wrong secret values (AES-GCM and the row decoder between them).

* file flips (SQLite): random bytes of the database file overwritten, the WAL folded first;
* row flips (SQLite and PostgreSQL): random bytes (or characters) of random rows' bodies.

`make test` runs a few seeds of each; `make soak` runs CREDWARDEN_FUZZ_SEEDS (240) of each.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from tests.rawdb import raw

from .corruption import Store, Tally, copy_sqlite, judge, populate, restored

SEEDS = int(os.environ.get("CREDWARDEN_FUZZ_SEEDS", "12"))


@pytest.fixture(scope="module")
def sqlite_base(tmp_path_factory: pytest.TempPathFactory) -> Store:
    home = tmp_path_factory.mktemp("fuzz-base") / "home"
    return populate(home, f"sqlite:///{home / 'credwarden.db'}")


def test_random_byte_flips_in_the_sqlite_file(sqlite_base: Store, tmp_path: Path) -> None:
    tally = Tally()
    for seed in range(SEEDS):
        rnd = random.Random(seed)
        s = copy_sqlite(sqlite_base, tmp_path / f"seed-{seed}")
        db = s.home / "credwarden.db"
        data = bytearray(db.read_bytes())
        for _ in range(rnd.randint(1, 8)):
            data[rnd.randrange(len(data))] = rnd.randrange(256)
        db.write_bytes(bytes(data))
        judge(s, tally, f"file seed {seed}")
    print(tally.line("SQLite file flips"))
    assert not tally.tracebacks, "\n".join(tally.tracebacks[:5])
    assert not tally.wrong_values, "\n".join(tally.wrong_values[:5])


def _flip_rows(s: Store, rnd: random.Random) -> None:
    """Damage 1-3 random rows: bytes of a record body, characters of an event's text."""
    with raw(s.url) as db:
        records = db.execute("SELECT ns, key, body FROM records")
        events = db.execute("SELECT seq, body FROM audit_events")
        for _ in range(rnd.randint(1, 3)):
            if rnd.random() < 0.6:
                ns, key, body = rnd.choice(records)
                data = bytearray(body)
                for _ in range(rnd.randint(1, 4)):
                    data[rnd.randrange(len(data))] = rnd.randrange(256)
                db.execute(
                    "UPDATE records SET body = ? WHERE ns = ? AND key = ?", (bytes(data), ns, key)
                )
            else:
                seq, text = rnd.choice(events)
                chars = list(text)
                for _ in range(rnd.randint(1, 4)):
                    code = (
                        rnd.randrange(32, 127) if rnd.random() < 0.7 else rnd.randrange(160, 0x3000)
                    )
                    chars[rnd.randrange(len(chars))] = chr(code)
                db.execute("UPDATE audit_events SET body = ? WHERE seq = ?", ("".join(chars), seq))


def test_random_flips_in_stored_rows(database_url: str, tmp_path: Path) -> None:
    s = populate(tmp_path / "home", database_url)
    tally = Tally()
    for seed in range(SEEDS):
        with restored(s):
            _flip_rows(s, random.Random(seed))
            judge(s, tally, f"row seed {seed}")
    print(tally.line(f"row flips ({database_url.split(':')[0]})"))
    assert not tally.tracebacks, "\n".join(tally.tracebacks[:5])
    assert not tally.wrong_values, "\n".join(tally.wrong_values[:5])
