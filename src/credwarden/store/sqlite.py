"""SQLite backend over the standard library's sqlite3: WAL, one connection per thread."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from ..errors import AlreadyExists, Conflict, CredwardenError, StoreError
from . import migrate, rows
from .base import (
    AUDIT_HEAD_SEQ,
    AuditHead,
    AuditRow,
    Record,
    Store,
    Tx,
    decode_head,
    encode_head,
)

_TOP = "\U0010ffff"

_list = list  # `list` is shadowed by a method name below


class SQLiteTx(Tx):
    __slots__ = ("_c",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._c = conn

    def get(self, ns: str, key: str) -> Record | None:
        try:
            row = self._c.execute(
                "SELECT rev, body FROM records WHERE ns = ? AND key = ?", (ns, key)
            ).fetchone()
        except _ERRORS as exc:
            raise _store_error(exc) from None
        return None if row is None else _record(ns, key, row[0], row[1])

    def put(self, ns: str, key: str, body: bytes, *, rev: int) -> int:
        if rev == 0:
            try:
                self._c.execute(
                    "INSERT INTO records (ns, key, rev, body) VALUES (?, ?, 1, ?)", (ns, key, body)
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"{ns} record {key!r} already exists") from None
            return 1
        cur = self._c.execute(
            "UPDATE records SET body = ?, rev = rev + 1 WHERE ns = ? AND key = ? AND rev = ?",
            (body, ns, key, rev),
        )
        if cur.rowcount != 1:
            raise Conflict(f"{ns} record {key!r} was changed by someone else")
        return rev + 1

    def delete(self, ns: str, key: str, *, rev: int) -> None:
        cur = self._c.execute(
            "DELETE FROM records WHERE ns = ? AND key = ? AND rev = ?", (ns, key, rev)
        )
        if cur.rowcount != 1:
            raise Conflict(f"{ns} record {key!r} was changed by someone else")

    def list(self, ns: str, prefix: str = "") -> _list[Record]:
        try:
            found = self._c.execute(
                "SELECT key, rev, body FROM records WHERE ns = ? AND key >= ? AND key < ?"
                " ORDER BY key",
                (ns, prefix, prefix + _TOP),
            ).fetchall()
        except _ERRORS as exc:
            raise _store_error(exc) from None
        return [_record(ns, k, r, b) for k, r, b in found]

    def audit_head(self) -> AuditHead | None:
        try:
            row = self._c.execute(
                "SELECT body, hash FROM audit_events WHERE seq = ?", (AUDIT_HEAD_SEQ,)
            ).fetchone()
        except _ERRORS as exc:
            raise _store_error(exc) from None
        return None if row is None else decode_head(row[0], row[1])

    def audit_append(self, rows: Sequence[AuditRow], head: AuditHead) -> None:
        try:
            if len(rows) == 1:
                self._c.execute(
                    "INSERT INTO audit_events (seq, body, hash) VALUES (?, ?, ?)", rows[0]
                )
            else:
                self._c.executemany(
                    "INSERT INTO audit_events (seq, body, hash) VALUES (?, ?, ?)", rows
                )
            self._c.execute(
                "UPDATE audit_events SET body = ?, hash = ? WHERE seq = ?",
                (*encode_head(head), AUDIT_HEAD_SEQ),
            )
        except _ERRORS as exc:
            raise _store_error(exc) from None

    def audit_scan(
        self,
        *,
        after_seq: int = 0,
        address: str | None = None,
        principal: str | None = None,
        since: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> Iterator[AuditRow]:
        where, args = ["seq > ?", "seq < ?"], [after_seq, AUDIT_HEAD_SEQ]
        for path, op, val in (
            ("$.address", "=", address),
            ("$.principal", "=", principal),
            ("$.ts", ">=", since),
        ):
            if val is not None:
                where.append(f"json_extract(body, '{path}') {op} ?")
                args.append(val)  # type: ignore[arg-type]
        sql = (
            f"SELECT seq, body, hash FROM audit_events WHERE {' AND '.join(where)}"
            f" ORDER BY seq {'DESC' if newest_first else 'ASC'}"
        )
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        try:
            for r in self._c.execute(sql, args):
                yield AuditRow(*r)
        except _ERRORS as exc:
            raise _store_error(exc) from None


class _Transaction:
    """BEGIN (IMMEDIATE for writers) ... COMMIT, or ROLLBACK on error; a class, not a
    generator-based context manager, because it wraps every audited read."""

    __slots__ = ("_conn", "_write")

    def __init__(self, conn: sqlite3.Connection, write: bool) -> None:
        self._conn = conn
        self._write = write

    def __enter__(self) -> Tx:
        try:
            self._conn.execute("BEGIN IMMEDIATE" if self._write else "BEGIN")
        except _ERRORS as exc:
            raise _store_error(exc) from None
        return SQLiteTx(self._conn)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        conn = self._conn
        if exc_type is not None:
            _rollback(conn)
            if isinstance(exc, _ERRORS):
                raise _store_error(exc) from None
            return
        try:
            conn.execute("COMMIT")
        except _ERRORS as err:
            _rollback(conn)
            raise _store_error(err) from None


class _Statements:
    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> SQLiteTx:
        return SQLiteTx(self._conn)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if isinstance(exc, _ERRORS):
            raise _store_error(exc) from None


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back if a transaction is open; a failing rollback (a damaged file) leaves the
    first error to be reported, and SQLite rolls back on its own when the connection ends."""
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except _ERRORS:
        pass


class SQLiteStore(Store):
    """One file in WAL mode; writers serialize on BEGIN IMMEDIATE with a busy timeout."""

    dialect = "sqlite"
    BUSY_TIMEOUT_S = 30.0

    def __init__(self, url: str, *, create: bool = True) -> None:
        self.url = url
        self.path = url[len("sqlite:///") :]
        try:
            mode: int | None = os.stat(self.path).st_mode
        except OSError:
            mode = None
        if mode is None and not create:
            raise StoreError(
                f"no credwarden store at {self.path}",
                hint="run `credwarden init`, or set CREDWARDEN_HOME / CREDWARDEN_DATABASE_URL",
            )
        if mode is not None and not stat.S_ISREG(mode):
            raise StoreError(
                f"the SQLite store {self.path} is not a regular file",
                hint="point CREDWARDEN_DATABASE_URL (or CREDWARDEN_HOME) at a credwarden store",
            )
        self._local = threading.local()
        self._all: _list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._migrate(create)

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        try:
            if not os.path.exists(self.path):
                os.makedirs(os.path.dirname(self.path) or ".", mode=0o700, exist_ok=True)
                # The file holds metadata and ciphertext: readable by its owner only.
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            conn = sqlite3.connect(
                self.path,
                timeout=self.BUSY_TIMEOUT_S,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        except (*_ERRORS, OSError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else _store_error(exc).message
            raise StoreError(f"cannot open the SQLite store at {self.path}: {why}") from None
        self._local.conn = conn
        with self._lock:
            self._all.append(conn)
        return conn

    def _version(self, conn: sqlite3.Connection) -> int:
        try:
            row = conn.execute(f"SELECT max(version) FROM {migrate.SCHEMA_TABLE}").fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return 0
            raise _store_error(exc) from None
        except _ERRORS as exc:
            raise _store_error(exc) from None
        if row[0] is not None and type(row[0]) is not int:
            raise StoreError(
                "the SQLite store's schema version is malformed",
                hint="restore the database from a backup",
            )
        return int(row[0] or 0)

    def _migrate(self, create: bool) -> None:
        conn = self._connect()
        current = self._version(conn)
        migrate.refuse_newer(current, self.dialect)
        if current == migrate.latest(self.dialect):
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {migrate.SCHEMA_TABLE} (version INTEGER PRIMARY KEY,"
                " name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            for m in migrate.pending(self.dialect, self._version(conn)):
                for stmt in m.statements:
                    conn.execute(stmt)
                conn.execute(
                    f"INSERT INTO {migrate.SCHEMA_TABLE} VALUES (?, ?, ?)",
                    (m.number, m.name, datetime.now(UTC).isoformat()),
                )
            conn.execute("COMMIT")
        except _ERRORS as exc:
            _rollback(conn)
            why = _store_error(exc).message
            raise StoreError(f"migrating the SQLite store at {self.path} failed: {why}") from None

    def lock(self, name: str, *, timeout: float) -> AbstractContextManager[None]:
        from .filelock import file_lock

        return file_lock(self.path + ".locks", name, timeout=timeout)

    def schema_version(self) -> int:
        return self._version(self._connect())

    def transaction(self, *, write: bool = True) -> _Transaction:
        return _Transaction(self._connect(), write)

    def statements(self) -> _Statements:
        """Autocommit reads: no BEGIN/COMMIT round (two thirds of a point read's cost)."""
        return _Statements(self._connect())

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for c in conns:
            c.close()
        self._local = threading.local()


_ERRORS = (sqlite3.Error, UnicodeDecodeError)
"""What a statement can raise: sqlite3's errors, and a UnicodeDecodeError when the module
cannot decode SQLite's own error text (it quotes bytes of a damaged file) or a text column."""


def _record(ns: str, key: Any, rev: Any, body: Any) -> Record:
    """A records row, its column types checked (SQLite keeps whatever it is given)."""
    if type(key) is str and type(rev) is int and type(body) is bytes:  # the read path
        return Record(key, rev, body)
    where = rows.record_name(ns, key if isinstance(key, str) else "?")
    if not isinstance(key, str):
        raise rows.corrupt(where, "its key is not text")
    if isinstance(body, str):
        body = body.encode()  # a TEXT value where a BLOB belongs: decoded like one
    elif not isinstance(body, bytes):
        raise rows.corrupt(where, "its body is not a blob")
    return Record(key, rows.integer(rev, where, "revision"), body)


def _store_error(exc: Any) -> CredwardenError:
    if isinstance(exc, UnicodeDecodeError):
        return StoreError(
            "database error: database disk image is malformed",
            hint="restore the database from a backup (`credwarden audit verify` checks the log)",
        )
    text = str(exc)
    if "locked" in text or "busy" in text:
        return StoreError(
            "the SQLite store is busy (locked by another writer for too long)",
            hint="retry; if it persists, look for a stuck credwarden process",
        )
    if "Could not decode to UTF-8" in text:  # its text quotes the bytes: never shown
        return StoreError(
            "database error: a stored text column is not UTF-8 (the database was altered)",
            hint="restore the database from a backup",
        )
    hint = None
    if "malformed" in text or "not a database" in text:
        hint = "restore the database from a backup (`credwarden audit verify` checks the log)"
    return StoreError(f"database error: {text[:200]}", hint=hint)
