"""Rendering for people (Rich tables, imported only here) and for scripts (JSON)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click


def print_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, ensure_ascii=False))


def print_table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str | None = None
) -> None:
    """A table on stdout; Rich is imported only when a table is actually printed."""
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns, title=title, box=None, header_style="bold", pad_edge=False)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console = Console(soft_wrap=True)
    if not console.is_terminal:
        console.width = 100_000  # piped: never wrap cells for width the output does not have
    console.print(table)


def print_fields(pairs: Sequence[tuple[str, Any]]) -> None:
    """`key: value` lines, aligned."""
    width = max((len(k) for k, _ in pairs), default=0)
    for key, value in pairs:
        click.echo(f"{key + ':':<{width + 1}} {'' if value is None else value}")
