"""Storage: SQLite (the default) and PostgreSQL behind one small contract."""

from __future__ import annotations

from ..errors import StoreError
from .base import AuditHead, AuditRow, Record, Store, Tx

__all__ = ["AuditHead", "AuditRow", "Record", "Store", "Tx", "open_store"]


def open_store(url: str, *, create: bool = True) -> Store:
    """Open (and migrate) the store at `url`: `sqlite:///PATH` or `postgresql://...`."""
    if url.startswith("sqlite:///") or url == "sqlite://:memory:":
        from .sqlite import SQLiteStore

        return SQLiteStore(url, create=create)
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore

        return PostgresStore(url, create=create)
    raise StoreError(
        f"unsupported database URL scheme in {url.split('://', 1)[0]!r}",
        hint="use sqlite:///PATH or postgresql://USER@HOST/DB",
    )
