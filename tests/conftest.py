"""Shared fixtures: each test gets its own CREDWARDEN_HOME and none of the caller's key settings."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from credwarden import Warden

CANARY = "CANARY-7f3e-secret-do-not-leak"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("CREDWARDEN_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CREDWARDEN_HOME", str(tmp_path / "home"))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cw.db'}"
        return
    from tests.pg import fresh_database

    with fresh_database() as url:
        yield url


@pytest.fixture
def warden(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Warden]:
    """An initialised store on each backend, opened as the local owner."""
    monkeypatch.setenv("CREDWARDEN_DATABASE_URL", database_url)
    w, _ = Warden.init(source="sdk")
    try:
        yield w
    finally:
        w.close()


@pytest.fixture
def open_warden(database_url: str) -> Iterator[Callable[..., Warden]]:
    """Open more Wardens on the test's store (as another process would); all closed after."""
    opened: list[Warden] = []

    def _open(**kwargs: Any) -> Warden:
        kwargs.setdefault("database_url", database_url)
        w = Warden.open_local(**kwargs)
        opened.append(w)
        return w

    try:
        yield _open
    finally:
        for w in opened:
            w.close()
