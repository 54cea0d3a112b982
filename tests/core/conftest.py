"""Fixtures of the facade tests: extra Wardens on the same store, closed afterwards."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from credwarden import Warden


@pytest.fixture
def open_warden(database_url: str) -> Iterator[Callable[..., Warden]]:
    """Open more Wardens on the test's store (as another process would); all closed after."""
    opened: list[Warden] = []

    def _open(**kwargs: Any) -> Warden:
        kwargs.setdefault("database_url", database_url)
        w = Warden.open(**kwargs)
        opened.append(w)
        return w

    try:
        yield _open
    finally:
        for w in opened:
            w.close()
