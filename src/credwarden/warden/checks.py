"""Checks of what callers hand the facade (names, metadata, windows): bad input is refused
before anything is read or written, with a message that says how to fix it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..address import parse_address
from ..errors import CredwardenError, ValidationError
from ..secret import Secret
from ..timeutil import MAX_SPAN_S, iso, parse_iso

MAX_TEXT = 2000
MAX_ROTATE_EVERY = MAX_SPAN_S
MAX_AUDIT_LIMIT = 1_000_000
TAG_KEY_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}\Z")
SEGMENT_RE = re.compile(r"[a-z0-9][a-z0-9._-]*\Z")
METADATA = (
    "description",
    "owner",
    "tags",
    "links",
    "provider",
    "expires_at",
    "rotate_every",
    "add_tags",
    "add_links",
)


def reveal(fields: Mapping[str, str | Secret]) -> dict[str, str]:
    return {k: v.reveal() if isinstance(v, Secret) else v for k, v in fields.items()}


def check_segment(label: str, value: str | None) -> None:
    """An environment or service name used as a filter."""
    if value is not None and not SEGMENT_RE.match(value):
        raise ValidationError(
            f"invalid {label} {value[:64]!r}",
            hint="names are lower-case letters, digits, '.', '_', '-'",
        )


def check_env_name(name: str) -> None:
    if not SEGMENT_RE.match(name) or len(name) > 64:
        raise ValidationError(
            f"invalid environment name {name[:64]!r}",
            hint="lower-case letters, digits, '.', '_', '-'",
        )


def check_span(name: str, value: int, *, unit: int = 1) -> int:
    """A report's window in seconds (`value` in units of `unit` seconds), at most 100 years."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value * unit <= MAX_SPAN_S:
        raise ValidationError(
            f"{name} must be a positive number of at most {MAX_SPAN_S // unit}"
            f" {'days' if unit == 86400 else 'seconds'}",
            hint="e.g. 90d",
        )
    return value * unit


def env_var_address(env: str, service: str, var: str) -> str:
    """The address an imported variable gets: `DATABASE_URL` -> `env/service/database-url`."""
    name = var.lower().replace("_", "-").strip("-")
    try:
        return str(parse_address(f"{env}/{service}/{name}"))
    except CredwardenError as exc:
        raise ValidationError(
            f"cannot import {var[:64]!r} into {env}/{service}: {exc.message}",
            hint="variable names become credential names: letters and digits",
        ) from None


def check_meta(**meta: Any) -> dict[str, Any]:
    """Validate metadata keywords; only the ones given are returned."""
    out: dict[str, Any] = {}
    for key in ("description", "owner", "provider"):
        if key in meta:
            v = meta[key]
            if v is not None and (not isinstance(v, str) or len(v) > MAX_TEXT):
                raise ValidationError(
                    f"{key} must be text of at most {MAX_TEXT} characters",
                    hint=f"shorten the {key}; put longer documentation behind a --link",
                )
            out[key] = v or None
    if "tags" in meta:
        out["tags"] = _tags(meta["tags"])
    if "links" in meta:
        out["links"] = _links(meta["links"])
    if "expires_at" in meta:
        out["expires_at"] = _expires(meta["expires_at"])
    if "rotate_every" in meta:
        v = meta["rotate_every"]
        if v is not None and (
            not isinstance(v, int) or isinstance(v, bool) or v <= 0 or v > MAX_ROTATE_EVERY
        ):
            raise ValidationError(
                "rotate_every must be a positive number of seconds (at most 100 years)",
                hint="on the command line: --rotate-every 90d",
            )
        out["rotate_every"] = v
    return out


def _tags(value: Any) -> dict[str, str]:
    tags = dict(value or {})
    for k, v in tags.items():
        if not TAG_KEY_RE.match(k) or not isinstance(v, str) or len(v) > 256:
            raise ValidationError(
                f"invalid tag {k[:64]!r}",
                hint="tags are key=value, keys lower-case like team or cost-center",
            )
    return tags


def _links(value: Any) -> list[str]:
    links = list(value or [])
    for link in links:
        if (
            not isinstance(link, str)
            or len(link) > MAX_TEXT
            or not link.startswith(("https://", "http://"))
        ):
            raise ValidationError(
                "links must be http(s) URLs of at most 2000 characters",
                hint="e.g. --link https://wiki.example.com/runbooks/stripe",
            )
    return links


def _expires(value: Any) -> str | None:
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise TypeError
        return iso(parse_iso(value))
    except (ValueError, TypeError, OverflowError):
        raise ValidationError(
            "expires_at must be an ISO date or timestamp",
            hint="e.g. 2027-05-01 or 2027-05-01T12:00:00Z",
        ) from None


__all__ = [
    "MAX_ROTATE_EVERY",
    "MAX_TEXT",
    "METADATA",
    "check_env_name",
    "check_meta",
    "check_segment",
    "check_span",
    "env_var_address",
    "reveal",
]
