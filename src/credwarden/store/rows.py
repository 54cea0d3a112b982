"""Every row read from the database is decoded here, because the store is untrusted: a body
that is not UTF-8, not JSON, of the wrong shape or types, missing keys or out of range
becomes one `StoreCorrupt` naming the row, never a KeyError three calls further on.

A `Shape` lists a record's fields with a check each (small predicates, not a schema
library: this runs on every cold `get`, and jsonschema's import alone costs more than the
read). Decoding returns only the fields the shape names.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final

from ..errors import StoreCorrupt
from .base import Record

Check = Callable[[Any], bool]

MAX_INT: Final = (1 << 63) - 1
"""Integers outside a signed 64-bit range were never written by credwarden."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)


NAMES: Final = {
    "cred": "credential",
    "ver": "credential version",
    "kek": "key-encryption key",
    "meta": "metadata",
    "apitoken": "API token",
    "token": "minted token",
    "job": "job lease",
    "oauth_pending": "pending connect flow",
    "oauth_done": "connect outcome",
}
"""Namespaces as users read them (the rest, e.g. `grant`, `principal`, are already words)."""


def record_name(ns: str, key: str) -> str:
    """How a record is named in messages: its namespace and (shortened) key."""
    shown = key if len(key) <= 80 else key[:77] + "..."
    return f"the stored {NAMES.get(ns, ns)} record {shown!r}"


def event_name(seq: int) -> str:
    return f"audit event {seq}"


def corrupt(where: str, why: str) -> StoreCorrupt:
    return StoreCorrupt(
        f"{where} is corrupt ({why})",
        hint="run `credwarden audit verify` to see what was changed, and restore the database"
        " from a backup",
    )


def text(body: bytes | str | memoryview, where: str) -> str:
    """A body as text: UTF-8 or corrupt."""
    if isinstance(body, str):
        return body
    if isinstance(body, memoryview | bytearray):
        body = bytes(body)
    if not isinstance(body, bytes):
        raise corrupt(where, f"its body is a {type(body).__name__}, not text")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise corrupt(where, "its body is not UTF-8") from None


def document(body: bytes | str | memoryview, where: str) -> Any:
    """A body as a JSON value of any shape (no NaN or infinities)."""
    raw = text(body, where)
    try:
        value = _DECODER.decode(raw)
    except (ValueError, RecursionError):
        raise corrupt(where, "its body is not valid JSON") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise corrupt(where, "its body holds an out-of-range number")
    return value


# -- checks ----------------------------------------------------------------------------------


def STR(v: Any) -> bool:
    return type(v) is str


def INT(v: Any) -> bool:
    return type(v) is int and -MAX_INT <= v <= MAX_INT


def COUNT(v: Any) -> bool:
    """A non-negative integer (a version, a term, a sequence number, a count)."""
    return type(v) is int and 0 <= v <= MAX_INT


def BOOL(v: Any) -> bool:
    return type(v) is bool


def NUMBER(v: Any) -> bool:
    return (type(v) is int and -MAX_INT <= v <= MAX_INT) or (type(v) is float and math.isfinite(v))


def TIME(v: Any) -> bool:
    """An ISO-8601 timestamp as credwarden writes them (`2026-01-02T03:04:05.000000Z`)."""
    if type(v) is not str or len(v) > 40:
        return False
    try:
        datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def ANY(v: Any) -> bool:
    return True


def OBJECT(v: Any) -> bool:
    """Any JSON object (its insides checked where it is used)."""
    return type(v) is dict


def bounded(low: int, high: int) -> Check:
    """An integer within [low, high]."""
    return lambda v: type(v) is int and low <= v <= high


def opt(check: Check) -> Check:
    """`check`, or null."""
    return lambda v: v is None or check(v)


def list_of(check: Check) -> Check:
    return lambda v: type(v) is list and all(check(x) for x in v)


def map_of(check: Check) -> Check:
    """An object with string keys and values that pass `check`."""
    return lambda v: type(v) is dict and all(type(k) is str and check(x) for k, x in v.items())


class Shape:
    """The fields of one kind of record: name -> check, and which must be present. An `open`
    shape keeps fields it does not name (a settings record that later versions extend and
    that is written back whole); a closed one returns only its own. `key` names the field
    that must repeat the row's key (a record copied under another key is corrupt)."""

    __slots__ = ("fields", "key", "name", "open", "required")

    def __init__(
        self,
        name: str,
        required: Mapping[str, Check],
        optional: Mapping[str, Check] | None = None,
        *,
        open: bool = False,
        key: str | None = None,
    ) -> None:
        self.name = name
        self.required = dict(required)
        self.fields = {**self.required, **(optional or {})}
        self.open = open
        self.key = key

    def check(self, value: Any, where: str) -> dict[str, Any]:
        """The fields of `value` (already parsed), or StoreCorrupt."""
        if type(value) is not dict:
            raise corrupt(where, f"a {self.name} must be a JSON object")
        for name in self.required:
            if name not in value:
                raise corrupt(where, f"its {self.name} has no {name!r}")
        out: dict[str, Any] = dict(value) if self.open else {}
        for name, check in self.fields.items():
            if name in value:
                v = value[name]
                if not check(v):
                    raise corrupt(where, f"its {self.name} has a malformed {name!r}")
                out[name] = v
        return out

    def decode(self, body: bytes | str | memoryview, where: str) -> dict[str, Any]:
        """Parse and check a stored body."""
        return self.check(document(body, where), where)

    def record(self, rec: Record, ns: str) -> dict[str, Any]:
        """The fields of the record `rec` of namespace `ns`, its key checked against `key`."""
        where = record_name(ns, rec.key)
        fields = self.decode(rec.body, where)
        if self.key is not None and fields[self.key] != rec.key:
            raise corrupt(where, f"it holds another {self.name}'s record")
        return fields


def integer(raw: Any, where: str, what: str) -> int:
    """A column that must hold a 64-bit integer (SQLite stores whatever it is given)."""
    if type(raw) is not int or not -MAX_INT <= raw <= MAX_INT:
        raise corrupt(where, f"its {what} is not an integer")
    return raw
