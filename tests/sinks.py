"""An alert sink for tests: keeps (rule, address) of every alert raised."""

from __future__ import annotations

from typing import Any


class ListSink:
    def __init__(self) -> None:
        self.alerts: list[tuple[str, str | None]] = []

    def alert(self, rule: str, address: str | None, detail: dict[str, Any]) -> None:
        self.alerts.append((rule, address))
