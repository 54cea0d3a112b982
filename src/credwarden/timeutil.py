"""Times and durations as users type them (`90d`, `2027-05-01`) and as the store keeps them."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Final

from .errors import ValidationError

_DURATION_RE: Final = re.compile(r"(\d+)([smhdw])")
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def parse_iso(text: str) -> datetime:
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def parse_duration(text: str) -> int:
    """`90d`, `12h`, `1w2d`, `3600s` -> seconds."""
    t = text.strip().lower()
    pos, total = 0, 0
    for m in _DURATION_RE.finditer(t):
        if m.start() != pos:
            break
        total += int(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not t or pos != len(t) or total <= 0:
        raise ValidationError(
            f"invalid duration {text[:40]!r}",
            hint="use a number and a unit: s, m, h, d, w — e.g. 90d, 12h, 1w2d",
        )
    return total


def format_duration(seconds: int) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_when(text: str) -> datetime:
    """A date (`2027-05-01`, end of that day UTC), an ISO timestamp, or `+30d` from now."""
    t = text.strip()
    if t.startswith("+"):
        return utcnow() + timedelta(seconds=parse_duration(t[1:]))
    try:
        if len(t) == 10:
            d = date.fromisoformat(t)
            return datetime(d.year, d.month, d.day, 23, 59, 59, tzinfo=UTC)
        return parse_iso(t)
    except ValueError:
        raise ValidationError(
            f"invalid date {text[:40]!r}",
            hint="use YYYY-MM-DD, an ISO timestamp, or +DURATION such as +90d",
        ) from None
