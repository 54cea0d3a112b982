"""Store tests run on every backend: `store_url` is an empty database, `store` an open store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from credwarden.store import Store, open_store

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, empty database (no store in it yet) of each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/s.db"
        return
    from tests.pg import fresh_database

    with fresh_database() as url:
        yield url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A store opened (and migrated) on `store_url`, closed afterwards."""
    s = open_store(store_url)
    try:
        yield s
    finally:
        s.close()
