"""The local PostgreSQL server for tests: reachability, and throw-away databases.

Tests that need the server skip, loudly, where it cannot be reached; under CI (the
`CI` environment variable set) they fail instead, since CI always has one.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import pytest

HOST = "127.0.0.1"
PORT = 5432
ADMIN_URL = f"postgresql://postgres@{HOST}:{PORT}/postgres"


def url_for(name: str) -> str:
    return f"postgresql://postgres@{HOST}:{PORT}/{name}"


@cache
def unreachable_reason() -> str | None:
    """None when the server answers at HOST:PORT (user postgres, trust auth); else why not."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[dev]')"
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()
        return f"cannot connect to {ADMIN_URL}: {first[0] if first else type(exc).__name__}"
    return None


def postgres_reachable() -> bool:
    return unreachable_reason() is None


def require_postgres() -> None:
    """Skip the calling test when there is no server; fail under CI, which always has one."""
    reason = unreachable_reason()
    if reason is None:
        return
    message = f"PostgreSQL tests NOT RUN: {reason}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set, and CI must have the server)", pytrace=False)
    pytest.skip(message)


@contextmanager
def fresh_database(*, icu_locale: str | None = None) -> Iterator[str]:
    """An empty database `cw_test_<hex>`, dropped (connections and all) afterwards.

    `icu_locale` (e.g. "en-US") makes that ICU collation the database default.
    """
    require_postgres()
    import psycopg
    from psycopg import sql

    name = f"cw_test_{secrets.token_hex(6)}"
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if icu_locale is not None:
        create += sql.SQL(" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE {}").format(
            sql.Literal(icu_locale)
        )
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(create)
    try:
        yield url_for(name)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
