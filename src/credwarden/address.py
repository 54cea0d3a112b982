"""Addresses `environment/service/name[#field]`: the one name a credential has, parsed strictly."""

from __future__ import annotations

import re
from typing import Final, NamedTuple

from .errors import InvalidAddress

SEGMENT_RE: Final = re.compile(r"[a-z0-9][a-z0-9._-]*\Z")
FIELD_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")
MAX_SEGMENT: Final = 64
MAX_FIELD: Final = 128
REFERENCE_PREFIX: Final = "cw://"
_PARTS: Final = ("environment", "service", "name")


class Address(NamedTuple):
    env: str
    service: str
    name: str

    def __str__(self) -> str:
        return f"{self.env}/{self.service}/{self.name}"


def _check_segment(label: str, seg: str, whole: str) -> None:
    if not seg:
        raise InvalidAddress(
            f"invalid address {whole!r}: the {label} is empty",
            hint="addresses look like environment/service/name, e.g. prod/stripe/billing",
        )
    if len(seg) > MAX_SEGMENT:
        raise InvalidAddress(
            f"invalid address: the {label} is longer than {MAX_SEGMENT} characters",
            hint="use a shorter name",
        )
    if seg in (".", "..") or not SEGMENT_RE.match(seg):
        raise InvalidAddress(
            f"invalid address {whole!r}: the {label} {seg!r} must be lower-case letters, digits,"
            " '.', '_' or '-', starting with a letter or digit",
            hint="e.g. prod/stripe/billing",
        )


_ADDR_CACHE: dict[str, Address] = {}


def parse_address(text: str) -> Address:
    """Parse `env/service/name`; raise InvalidAddress naming the bad part."""
    hit = _ADDR_CACHE.get(text) if isinstance(text, str) else None
    if hit is not None:
        return hit
    result = _parse_address(text)
    if len(_ADDR_CACHE) >= 4096:  # a server reads the same few addresses many times
        _ADDR_CACHE.clear()
    _ADDR_CACHE[text] = result
    return result


def _parse_address(text: str) -> Address:
    if not isinstance(text, str):
        raise InvalidAddress("an address must be text")
    shown = text if len(text) <= 200 else text[:200] + "…"
    if text.startswith(REFERENCE_PREFIX):
        text = text[len(REFERENCE_PREFIX) :]
    parts = text.split("/")
    if len(parts) != 3:
        raise InvalidAddress(
            f"invalid address {shown!r}: expected 3 parts (environment/service/name),"
            f" got {len(parts)}",
            hint="e.g. prod/stripe/billing",
        )
    for label, seg in zip(_PARTS, parts, strict=True):
        _check_segment(label, seg, shown)
    return Address(parts[0], parts[1], parts[2])


_REF_CACHE: dict[str, tuple[Address, str | None]] = {}


def parse_ref(text: str) -> tuple[Address, str | None]:
    """Parse `env/service/name#field` (or a `cw://` reference); the field is optional."""
    hit = _REF_CACHE.get(text) if isinstance(text, str) else None
    if hit is not None:
        return hit
    result = _parse_ref(text)
    if len(_REF_CACHE) >= 4096:  # a long-running workflow reads a few addresses many times
        _REF_CACHE.clear()
    _REF_CACHE[text] = result
    return result


def _parse_ref(text: str) -> tuple[Address, str | None]:
    if not isinstance(text, str):
        raise InvalidAddress("an address must be text")
    base, sep, field = text.partition("#")
    address = parse_address(base)
    if not sep:
        return address, None
    if not field or len(field) > MAX_FIELD or not FIELD_RE.match(field):
        raise InvalidAddress(
            f"invalid field name after '#' in {text[:200]!r}",
            hint="a field is letters, digits, '_', '.' and '-', e.g. prod/stripe/billing#api_key",
        )
    return address, field


def check_pattern(pattern: str) -> str:
    """Validate an address pattern such as `prod/stripe/*` or `*/github/*`."""
    parts = pattern.split("/")
    if not 1 <= len(parts) <= 3 or any(not p for p in parts):
        raise InvalidAddress(
            f"invalid address pattern {pattern[:200]!r}",
            hint="patterns are environment/service/name with '*' wildcards, e.g. prod/stripe/*",
        )
    for p in parts:
        if not re.fullmatch(r"[a-z0-9*?._-]+", p):
            raise InvalidAddress(
                f"invalid address pattern {pattern[:200]!r}: {p!r} has characters that"
                " addresses never contain",
                hint="use lower-case names and '*' wildcards, e.g. prod/stripe/*",
            )
    return pattern


def matches(pattern: str, address: Address | str) -> bool:
    """Whether an address matches a pattern; a short one matches a prefix (`prod` = `prod/*/*`)."""
    parts = pattern.split("/")
    addr = str(address).removeprefix(REFERENCE_PREFIX).split("/")
    from fnmatch import fnmatchcase

    if len(parts) > 3 or len(addr) != 3:
        return False
    parts += ["*"] * (3 - len(parts))
    return all(fnmatchcase(a, p) for a, p in zip(addr, parts, strict=True))
