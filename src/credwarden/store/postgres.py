"""PostgreSQL backend over psycopg 3: one connection per thread, row and advisory locks.

Write transactions are READ COMMITTED: compare-and-set rests on `UPDATE ... WHERE
rev = %s` (a concurrent writer's UPDATE waits for the row, then re-checks the rev),
and audit appends serialize on the head row (`SELECT ... FOR UPDATE`; migration
0001 seeds it, so even the first event has a row to lock). Read transactions are
REPEATABLE READ READ ONLY, so an audit verify sees the events and the head as of
one instant.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from ..errors import (
    AlreadyExists,
    Conflict,
    CredwardenError,
    LockTimeout,
    SchemaTooNew,
    StoreError,
)
from ..settings import redact_url
from . import migrate
from .base import AUDIT_HEAD_SEQ, AuditHead, AuditRow, Record, Store, Tx, decode_head, encode_head

_MISSING: str | None = None
try:
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg.conninfo import conninfo_to_dict, make_conninfo
    from psycopg.pq import TransactionStatus
except ImportError as _exc:  # pragma: no cover - exercised with psycopg hidden
    _MISSING = str(_exc)

if TYPE_CHECKING:
    from psycopg.rows import TupleRow

    Connection = psycopg.Connection[TupleRow]
    Cursor = psycopg.Cursor[TupleRow]

_TOP: Final = "\U0010ffff"
# Advisory lock key (per database) for migrations: ASCII "cwmigrat" as a big-endian bigint.
MIGRATE_LOCK: Final = 0x6377_6D69_6772_6174
_SCAN_CHUNK: Final = 1000

_list = list  # `list` is shadowed by a method name below


class PostgresTx(Tx):
    __slots__ = ("_c", "_renew", "_where", "_write")

    def __init__(
        self,
        conn: Connection,
        *,
        write: bool,
        where: str,
        renew: Callable[[Connection], Connection] | None,
    ) -> None:
        self._c = conn
        self._write = write
        self._where = where
        # Set while nothing has run yet on a reused connection: if that connection turns
        # out to be dead (server restarted), the first statement may safely move to a new one.
        self._renew = renew

    def _exec(
        self, query: Any, args: Sequence[Any] | None = None, *, binary: bool = False
    ) -> Cursor:
        while True:
            try:
                cur = self._c.execute(query, args, binary=binary)
            except psycopg.Error as exc:
                renew, self._renew = self._renew, None
                if renew is not None and self._c.broken:
                    self._c = renew(self._c)
                    continue
                raise _store_error(exc, self._where) from None
            self._renew = None
            return cur

    def get(self, ns: str, key: str) -> Record | None:
        row = self._exec(
            "SELECT rev, body FROM records WHERE ns = %s AND key = %s", (ns, key), binary=True
        ).fetchone()
        return None if row is None else Record(key, row[0], row[1])

    def get_many(self, ns: str, keys: Sequence[str]) -> dict[str, Record]:
        rows = self._exec(
            "SELECT key, rev, body FROM records WHERE ns = %s AND key = ANY(%s)",
            (ns, list(keys)),
            binary=True,
        ).fetchall()
        return {r[0]: Record(r[0], r[1], r[2]) for r in rows}

    def put(self, ns: str, key: str, body: bytes, *, rev: int) -> int:
        if rev == 0:
            cur = self._exec(
                "INSERT INTO records (ns, key, rev, body) VALUES (%s, %s, 1, %b)"
                " ON CONFLICT (ns, key) DO NOTHING",
                (ns, key, body),
            )
            if cur.rowcount != 1:
                raise AlreadyExists(f"{ns} record {key!r} already exists")
            return 1
        cur = self._exec(
            "UPDATE records SET body = %b, rev = rev + 1 WHERE ns = %s AND key = %s AND rev = %s",
            (body, ns, key, rev),
        )
        if cur.rowcount != 1:
            raise Conflict(f"{ns} record {key!r} was changed by someone else")
        return rev + 1

    def delete(self, ns: str, key: str, *, rev: int) -> None:
        cur = self._exec(
            "DELETE FROM records WHERE ns = %s AND key = %s AND rev = %s", (ns, key, rev)
        )
        if cur.rowcount != 1:
            raise Conflict(f"{ns} record {key!r} was changed by someone else")

    def list(self, ns: str, prefix: str = "") -> _list[Record]:
        rows = self._exec(
            "SELECT key, rev, body FROM records WHERE ns = %s AND key >= %s AND key < %s"
            " ORDER BY key",
            (ns, prefix, prefix + _TOP),
            binary=True,
        ).fetchall()
        return [Record(k, r, b) for k, r, b in rows]

    def audit_head(self) -> AuditHead | None:
        # In a writer the row lock orders appends until commit; a read-only transaction
        # cannot lock rows, and its snapshot is consistent already.
        lock = " FOR UPDATE" if self._write else ""
        row = self._exec(
            f"SELECT body, hash FROM audit_events WHERE seq = %s{lock}", (AUDIT_HEAD_SEQ,)
        ).fetchone()
        return None if row is None else decode_head(row[0], row[1])

    def audit_append(self, rows: Sequence[AuditRow], head: AuditHead) -> None:
        for start in range(0, len(rows), 1000):  # one round trip per thousand events
            chunk = rows[start : start + 1000]
            self._exec(
                "INSERT INTO audit_events (seq, body, hash) VALUES "
                + ", ".join(["(%s, %s, %s)"] * len(chunk)),
                [v for row in chunk for v in row],
            )
        self._exec(
            "UPDATE audit_events SET body = %s, hash = %s WHERE seq = %s",
            (*encode_head(head), AUDIT_HEAD_SEQ),
        )

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
        where: _list[str] = ["seq > %s", "seq < %s"]
        args: _list[Any] = [after_seq, AUDIT_HEAD_SEQ]
        filters = (("address", "=", address), ("principal", "=", principal), ("ts", ">=", since))
        for field, op, val in filters:
            if val is not None:
                # COLLATE "C": compared code point by code point, as SQLite does
                where.append(f"(body::json ->> '{field}') COLLATE \"C\" {op} %s")
                args.append(val)
        order, step = ("DESC", "seq < %s") if newest_first else ("ASC", "seq > %s")
        left = None if limit is None or limit < 0 else limit  # SQLite: a negative LIMIT is none
        # Keyset pages: a verify of a long log never holds more than one page.
        last: int | None = None
        while left is None or left > 0:
            page = _SCAN_CHUNK if left is None else min(_SCAN_CHUNK, left)
            conds, params = _list(where), _list(args)
            if last is not None:
                conds.append(step)
                params.append(last)
            rows = self._exec(
                f"SELECT seq, body, hash FROM audit_events WHERE {' AND '.join(conds)}"
                f" ORDER BY seq {order} LIMIT %s",
                [*params, page],
            ).fetchall()
            for r in rows:
                yield AuditRow(r[0], r[1], r[2])
            if len(rows) < page:
                return
            last = rows[-1][0]
            if left is not None:
                left -= len(rows)


class PostgresStore(Store):
    """A shared PostgreSQL database: any number of processes and nodes may open it at once."""

    dialect = "postgres"
    LOCK_TIMEOUT_S = 30.0
    CONNECT_TIMEOUT_S = 10

    def __init__(self, url: str, *, create: bool = True) -> None:
        if _MISSING is not None:
            raise StoreError(
                "PostgreSQL support is not installed (the psycopg package is missing)",
                hint="pip install 'credwarden[postgres]'",
            )
        self.url = url
        self._where = _describe(url)
        self._params = self._conn_params(url)
        self._conninfo = make_conninfo("", **self._params)
        self._local = threading.local()
        self._lock_local = threading.local()
        self._auto_local = threading.local()
        self._lock_conns: _list[Connection] = []
        self._conns: dict[int, tuple[threading.Thread, Connection]] = {}
        self._lock = threading.Lock()
        try:
            self._migrate(create)
        except BaseException:
            self.close()
            raise

    def _conn_params(self, url: str) -> dict[str, Any]:
        try:
            params: dict[str, Any] = conninfo_to_dict(url)
        except psycopg.Error:
            # libpq's message quotes the URL, password included.
            raise StoreError(
                f"invalid PostgreSQL URL {self._where}",
                hint="use postgresql://USER[:PASSWORD]@HOST[:PORT]/DB",
            ) from None
        params.setdefault("connect_timeout", self.CONNECT_TIMEOUT_S)
        params.setdefault("application_name", "credwarden")
        timeout_ms = int(self.LOCK_TIMEOUT_S * 1000)
        params["options"] = f"{params.get('options') or ''} -c lock_timeout={timeout_ms}".strip()
        return params

    # -- connections -------------------------------------------------------

    def _connect(self) -> tuple[Connection, bool]:
        """This thread's connection, and whether it was reused (may have died since)."""
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            if not conn.closed:
                return conn, True
            self._discard(conn)
        try:
            conn = psycopg.connect(self._conninfo, autocommit=False)
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            password = self._params.get("password")
            if password:
                reason = reason.replace(str(password), "***")
            raise StoreError(
                f"cannot connect to the PostgreSQL store at {self._where}: {reason}",
                hint="check that the server is running and that the database URL is right",
            ) from None
        self._local.conn = conn
        dead: _list[Connection] = []
        with self._lock:
            for key, (thread, other) in _list(self._conns.items()):
                if not thread.is_alive():  # its thread ended: nobody else will use it
                    dead.append(other)
                    del self._conns[key]
            self._conns[id(conn)] = (threading.current_thread(), conn)
        for other in dead:
            other.close()
        return conn, False

    def _discard(self, conn: Connection) -> None:
        with self._lock:
            self._conns.pop(id(conn), None)
        if getattr(self._local, "conn", None) is conn:
            del self._local.conn
        conn.close()

    def _renew(self, write: bool) -> Callable[[Connection], Connection]:
        def renew(dead: Connection) -> Connection:
            self._discard(dead)
            conn, _ = self._connect()
            self._configure(conn, write)
            return conn

        return renew

    def _configure(self, conn: Connection, write: bool) -> None:
        if conn.info.transaction_status != TransactionStatus.IDLE:
            raise StoreError("a transaction is already open in this thread on this store")
        # psycopg puts these in the BEGIN it sends before the first statement.
        conn.isolation_level = (
            psycopg.IsolationLevel.READ_COMMITTED
            if write
            else psycopg.IsolationLevel.REPEATABLE_READ
        )
        conn.read_only = not write

    def _end(self, conn: Connection) -> None:
        """Roll back after a failure; a connection that cannot do that is dropped."""
        if not conn.closed:
            try:
                conn.rollback()
                return
            except psycopg.Error:
                pass
        self._discard(conn)

    # -- transactions ------------------------------------------------------

    def transaction(self, *, write: bool = True) -> _Transaction:
        return _Transaction(self, write)

    # -- schema ------------------------------------------------------------

    def _version(self, tx: PostgresTx) -> int | None:
        """The applied migration number; None when there is no schema table at all."""
        row = tx._exec(f"SELECT to_regclass('{migrate.SCHEMA_TABLE}')").fetchone()
        if row is None or row[0] is None:
            return None
        row = tx._exec(f"SELECT max(version) FROM {migrate.SCHEMA_TABLE}").fetchone()
        return int(row[0] or 0) if row else 0

    def _migrate(self, create: bool) -> None:
        with _Transaction(self, False) as tx:
            found = self._version(tx)
        if found is None and not create:
            raise StoreError(
                f"no credwarden store in this PostgreSQL database ({self._where})",
                hint="run `credwarden init`, or set CREDWARDEN_DATABASE_URL to the right database",
            )
        current = found or 0
        migrate.refuse_newer(current, self.dialect)
        if current == migrate.latest(self.dialect):
            return
        try:
            with _Transaction(self, True) as tx:
                # Two processes opening a fresh database at once: the second waits, then
                # finds the work done.
                tx._exec("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
                tx._exec(
                    f"CREATE TABLE IF NOT EXISTS {migrate.SCHEMA_TABLE} (version INTEGER"
                    " PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
                )
                current = self._version(tx) or 0
                migrate.refuse_newer(current, self.dialect)
                for m in migrate.pending(self.dialect, current):
                    for stmt in m.statements:
                        tx._exec(stmt)
                    tx._exec(
                        f"INSERT INTO {migrate.SCHEMA_TABLE} VALUES (%s, %s, %s)",
                        (m.number, m.name, datetime.now(UTC).isoformat()),
                    )
        except StoreError as exc:
            if isinstance(exc, SchemaTooNew):
                raise
            raise StoreError(
                f"migrating the PostgreSQL store at {self._where} failed: {exc.message}",
                hint=exc.hint,
            ) from None

    def _autocommit(self, local: threading.local) -> Connection:
        """This thread's autocommit connection kept in `local` (closed with the store)."""
        conn: Connection | None = getattr(local, "conn", None)
        if conn is None or conn.closed:
            try:
                conn = psycopg.connect(self._conninfo, autocommit=True)
            except psycopg.Error:
                raise StoreError(
                    f"cannot connect to the PostgreSQL store at {self._where}"
                ) from None
            local.conn = conn
            with self._lock:
                self._lock_conns.append(conn)
        return conn

    @contextmanager
    def lock(self, name: str, *, timeout: float) -> Iterator[None]:
        """A session advisory lock on this thread's lock connection (autocommit, kept for the
        next lock): PostgreSQL releases it when that connection ends, so a dead node never
        keeps it (and a live one never loses it)."""
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        conn = self._autocommit(self._lock_local)
        healthy = False
        try:
            try:
                conn.execute(f"SET lock_timeout = {max(1, int(timeout * 1000))}")
                conn.execute("SELECT pg_advisory_lock(%s)", (key,))
            except pg_errors.LockNotAvailable:
                healthy = True  # autocommit: only the statement failed; other locks stay held
                raise LockTimeout(
                    f"{name} is being refreshed by another node for more than {timeout:g} s",
                    hint="retry shortly; credwarden will not refresh it twice at once",
                ) from None
            except psycopg.Error as exc:
                raise StoreError(f"taking a lock failed: {type(exc).__name__}") from None
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
                healthy = True
        finally:
            if not healthy:  # unknown state: closing the session is what releases the lock
                with contextlib.suppress(psycopg.Error):
                    conn.close()
                self._lock_local.conn = None

    @contextmanager
    def statements(self) -> Iterator[Tx]:
        """Autocommit reads on this thread's autocommit connection: one round trip for a point
        read instead of three (BEGIN ... COMMIT)."""
        conn = self._autocommit(self._auto_local)
        try:
            yield PostgresTx(conn, write=False, where=self._where, renew=None)
        except psycopg.Error as exc:
            if conn.closed or conn.broken:
                self._auto_local.conn = None
            raise _store_error(exc, self._where) from None

    def schema_version(self) -> int:
        with _Transaction(self, False) as tx:
            return self._version(tx) or 0

    def close(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, {}
            lock_conns, self._lock_conns = self._lock_conns, []
        for _, c in conns.values():
            c.close()
        for c in lock_conns:
            c.close()
        self._local = threading.local()
        self._lock_local = threading.local()
        self._auto_local = threading.local()


class _Transaction:
    """BEGIN (psycopg sends it with the isolation level before the first statement) ...
    COMMIT, or ROLLBACK on error; a class, like SQLite's, as it wraps every audited read."""

    __slots__ = ("_store", "_tx", "_write")

    def __init__(self, store: PostgresStore, write: bool) -> None:
        self._store = store
        self._write = write
        self._tx: PostgresTx | None = None

    def __enter__(self) -> PostgresTx:
        store = self._store
        conn, reused = store._connect()
        store._configure(conn, self._write)
        renew = store._renew(self._write) if reused else None
        self._tx = PostgresTx(conn, write=self._write, where=store._where, renew=renew)
        return self._tx

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        assert self._tx is not None
        conn, self._tx = self._tx._c, None
        if exc is None:
            if conn.info.transaction_status == TransactionStatus.INERROR:
                # Someone caught a database error inside the block: COMMIT would roll back.
                self._store._end(conn)
                raise StoreError(
                    "the transaction was aborted by an earlier database error; nothing was saved"
                )
            try:
                conn.commit()
            except psycopg.Error as err:
                self._store._end(conn)
                raise _store_error(err, self._store._where) from None
            return
        self._store._end(conn)
        if isinstance(exc, psycopg.Error):
            raise _store_error(exc, self._store._where) from None


def _describe(url: str) -> str:
    """The URL fit for a message: no password, no query string (it may hold one too)."""
    return redact_url(url.split("?", 1)[0])


_CONNECTION_LOST: Final = ("57P01", "57P02", "57P03")


def _store_error(exc: psycopg.Error, where: str) -> CredwardenError:
    """A StoreError whose message never carries statement parameters (nor DETAIL lines)."""
    state = exc.sqlstate or ""
    if isinstance(exc, pg_errors.SerializationFailure | pg_errors.DeadlockDetected):
        return StoreError(
            "the PostgreSQL transaction collided with a concurrent one and was rolled back",
            hint="retry",
        )
    if isinstance(exc, pg_errors.LockNotAvailable):
        return StoreError(
            "the PostgreSQL store is busy (locked by another writer for too long)",
            hint="retry; if it persists, look for a stuck credwarden process (pg_stat_activity)",
        )
    if (
        state.startswith("08")
        or state in _CONNECTION_LOST
        or (isinstance(exc, psycopg.OperationalError) and not state)
    ):
        return StoreError(
            f"lost the connection to the PostgreSQL store at {where}",
            hint="check that the server is running; the next operation reconnects",
        )
    if not state:  # raised by psycopg itself: about types and protocol, never values
        text = str(exc).strip().splitlines()
        return StoreError(f"database error: {text[0] if text else type(exc).__name__}")
    if state.startswith("22"):  # data exceptions quote the offending value
        return StoreError(f"database error: invalid data (SQLSTATE {state})")
    return StoreError(f"database error: {exc.diag.message_primary or state}")
