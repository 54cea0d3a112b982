"""Raw access to a store's database, beside the facade: snapshots, tampering, broken audits.

Tests use it to look at what really is on disk and to play the attacker who can write the
database but has no key. Statements use `?` placeholders; PostgreSQL gets them as `%s`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

TABLES = {
    "records": "SELECT * FROM records ORDER BY ns, key",
    "audit_events": "SELECT * FROM audit_events WHERE seq < 4611686018427387904 ORDER BY seq",
    "audit_head": "SELECT * FROM audit_events WHERE seq = 4611686018427387904",
}


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite:///")


def sqlite_path(url: str) -> str:
    return url[len("sqlite:///") :]


def _norm(value: Any) -> Any:
    return bytes(value) if isinstance(value, memoryview | bytearray) else value


class Raw:
    """One autocommitting connection to the store's database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite = is_sqlite(url)
        if self.sqlite:
            self._conn: Any = sqlite3.connect(sqlite_path(url), isolation_level=None, timeout=30)
        else:
            import psycopg

            self._conn = psycopg.connect(url, autocommit=True)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if not self.sqlite and params:
            sql = sql.replace("?", "%s")
        cur = self._conn.execute(sql, tuple(params)) if params else self._conn.execute(sql)
        if cur.description is None:
            return []
        return [tuple(_norm(v) for v in row) for row in cur.fetchall()]

    def close(self) -> None:
        self._conn.close()


@contextlib.contextmanager
def raw(url: str) -> Iterator[Raw]:
    conn = Raw(url)
    try:
        yield conn
    finally:
        conn.close()


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the store's tables (records, audit log, audit head), in a stable order."""
    with raw(url) as db:
        return {name: db.execute(sql) for name, sql in TABLES.items()}


def count_events(url: str) -> int:
    with raw(url) as db:
        return int(
            db.execute("SELECT count(*) FROM audit_events WHERE seq < 4611686018427387904")[0][0]
        )


def events_after(url: str, seq: int) -> list[dict[str, Any]]:
    """The stored bodies of the events after `seq`, decoded."""
    with raw(url) as db:
        rows = db.execute(
            "SELECT seq, body FROM audit_events"
            " WHERE seq > ? AND seq < 4611686018427387904 ORDER BY seq",
            (seq,),
        )
    out = []
    for s, body in rows:
        event = json.loads(body)
        assert event["seq"] == s
        out.append(event)
    return out


def audit_columns(url: str) -> list[str]:
    with raw(url) as db:
        if db.sqlite:
            return [r[1] for r in db.execute("PRAGMA table_info(audit_events)")]
        return [
            r[0]
            for r in db.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_name = 'audit_events' ORDER BY ordinal_position"
            )
        ]


def max_seq(url: str) -> int:
    with raw(url) as db:
        return int(
            db.execute(
                "SELECT coalesce(max(seq), 0) FROM audit_events WHERE seq < 4611686018427387904"
            )[0][0]
        )


def break_audit(url: str) -> None:
    """Make every audit append fail, as a full disk or a revoked grant would."""
    with raw(url) as db:
        if db.sqlite:
            db.execute(
                "CREATE TRIGGER cw_test_no_audit BEFORE INSERT ON audit_events"
                " BEGIN SELECT RAISE(ABORT, 'no'); END"
            )
        else:
            db.execute(
                "CREATE FUNCTION cw_test_no_audit() RETURNS trigger LANGUAGE plpgsql AS"
                " $f$ BEGIN RAISE EXCEPTION 'no'; END $f$"
            )
            db.execute(
                "CREATE TRIGGER cw_test_no_audit BEFORE INSERT ON audit_events"
                " FOR EACH ROW EXECUTE FUNCTION cw_test_no_audit()"
            )


def repair_audit(url: str) -> None:
    with raw(url) as db:
        if db.sqlite:
            db.execute("DROP TRIGGER cw_test_no_audit")
        else:
            db.execute("DROP TRIGGER cw_test_no_audit ON audit_events")
            db.execute("DROP FUNCTION cw_test_no_audit()")


def stored_bytes(url: str) -> bytes:
    """Everything the database holds, as bytes: the SQLite files, or every row of PostgreSQL."""
    if is_sqlite(url):
        out = b""
        path = sqlite_path(url)
        for suffix in ("", "-wal", "-journal"):
            if os.path.exists(path + suffix):
                with open(path + suffix, "rb") as fh:
                    out += fh.read()
        return out
    parts: list[bytes] = []
    with raw(url) as db:
        for sql in (
            "SELECT ns, key, body FROM records",
            "SELECT r::text FROM records r",
            "SELECT e::text FROM audit_events e",
        ):
            for row in db.execute(sql):
                for v in row:
                    parts.append(v if isinstance(v, bytes) else str(v).encode())
    return b"\n".join(parts)


# Records that only cache what the audit log already says (usage folded from read events):
# reads may refresh them, so "nothing changed" comparisons of reads leave them out.
DERIVED_NS = frozenset({"usage"})
DERIVED_META = frozenset({"usage_cursor"})


def durable_records(url: str) -> list[tuple[Any, ...]]:
    """The records that hold keys, credentials and versions (not derived usage caches)."""
    return [
        r
        for r in snapshot(url)["records"]
        if r[0] not in DERIVED_NS and not (r[0] == "meta" and r[1] in DERIVED_META)
    ]
