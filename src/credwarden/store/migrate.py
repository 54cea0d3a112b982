"""Numbered SQL migrations per dialect, applied in one transaction when a store opens."""

from __future__ import annotations

import os
from typing import Final, NamedTuple

from ..errors import SchemaTooNew

SCHEMA_TABLE: Final = "credwarden_schema"
_DIR: Final = os.path.join(os.path.dirname(__file__), "migrations")


class Migration(NamedTuple):
    number: int
    name: str
    statements: list[str]


def split_sql(text: str) -> list[str]:
    """Statements of a migration file: split on ';' at the end of a line, comments dropped."""
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("--")]
    out, buf = [], []
    for ln in lines:
        buf.append(ln)
        if ln.rstrip().endswith(";"):
            stmt = "\n".join(buf).strip().rstrip(";").strip()
            if stmt:
                out.append(stmt)
            buf = []
    tail = "\n".join(buf).strip()
    if tail:
        out.append(tail)
    return out


def latest(dialect: str) -> int:
    return max(
        (
            int(n.split("_", 1)[0])
            for n in os.listdir(os.path.join(_DIR, dialect))
            if n.endswith(".sql")
        ),
        default=0,
    )


def pending(dialect: str, current: int) -> list[Migration]:
    result = []
    for name in sorted(os.listdir(os.path.join(_DIR, dialect))):
        if not name.endswith(".sql"):
            continue
        number = int(name.split("_", 1)[0])
        if number > current:
            with open(os.path.join(_DIR, dialect, name), encoding="utf-8") as fh:
                text = fh.read()
            result.append(Migration(number, name, split_sql(text)))
    return result


def refuse_newer(current: int, dialect: str) -> None:
    code = latest(dialect)
    if current > code:
        raise SchemaTooNew(
            f"the database is at schema version {current}, newer than this credwarden"
            f" understands ({code})",
            hint="upgrade credwarden (pip install -U credwarden) before using this store",
        )
