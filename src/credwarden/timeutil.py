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


MAX_SPAN_S: Final = 100 * 366 * 86400
"""The longest duration anywhere (an expiry offset, a rotation period, a report's window, a
look-back): 100 years. Beyond it dates leave what datetime and the databases can hold."""

_RANGE_HINT: Final = "at most 100 years (36600d); e.g. 90d, 12h, 1w2d"
_MAX_DIGITS: Final = 12


def parse_duration(text: str, *, what: str = "duration") -> int:
    """`90d`, `12h`, `1w2d`, `3600s` -> seconds, at least 1 s and at most MAX_SPAN_S."""
    t = text.strip().lower()
    pos, total = 0, 0
    for m in _DURATION_RE.finditer(t):
        if m.start() != pos:
            break
        if len(m.group(1)) > _MAX_DIGITS:
            total = MAX_SPAN_S + 1
        else:
            total += int(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not t or pos != len(t) or total <= 0:
        raise ValidationError(
            f"invalid {what} {text[:40]!r}",
            hint="use a number and a unit: s, m, h, d, w — e.g. 90d, 12h, 1w2d",
        )
    if total > MAX_SPAN_S:
        raise ValidationError(f"{what} {text[:40]!r} is out of range", hint=_RANGE_HINT)
    return total


def parse_since(text: str) -> str:
    """A look-back as the ISO timestamp it starts at: `24h`/`7d` (that long ago), a date
    `2026-05-01` (the start of that day, UTC) or an ISO timestamp."""
    t = text.strip()
    if t[:1].isdigit() and t[-1:].lower() in "smhdw" and "-" not in t:
        return iso(utcnow() - timedelta(seconds=parse_duration(t, what="--since")))
    try:
        if len(t) == 10:
            d = date.fromisoformat(t)
            return iso(datetime(d.year, d.month, d.day, tzinfo=UTC))
        return iso(parse_iso(t))
    except (ValueError, OverflowError):
        raise ValidationError(
            f"invalid --since {text[:40]!r}",
            hint="use a duration such as 24h or 7d (at most 36600d), a date YYYY-MM-DD,"
            " or an ISO timestamp",
        ) from None


def format_duration(seconds: int) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_when(text: str, *, what: str = "date") -> datetime:
    """A date (`2027-05-01`, end of that day UTC), an ISO timestamp, or `+30d` from now."""
    t = text.strip()
    if t.startswith("+"):
        return utcnow() + timedelta(seconds=parse_duration(t[1:], what=what))
    try:
        if len(t) == 10:
            d = date.fromisoformat(t)
            return datetime(d.year, d.month, d.day, 23, 59, 59, tzinfo=UTC)
        return parse_iso(t)
    except (ValueError, OverflowError):
        raise ValidationError(
            f"invalid {what} {text[:40]!r}",
            hint="use YYYY-MM-DD, an ISO timestamp, or +DURATION such as +90d",
        ) from None
