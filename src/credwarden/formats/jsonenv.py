"""Flat JSON `{"NAME": "value"}` import/export (Doppler's shape), refusing anything else by name."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Final

from ..errors import ValidationError
from .dotenv import KEY_HINT, KEY_RE, check_document, check_value, checked_items


class _Pairs(list[tuple[str, object]]):
    """A decoded JSON object, kept as pairs so duplicate keys can be reported."""


class _Number:
    """Stands in for every JSON number: never converted (no huge-int limits), only reported."""


_NUMBER: Final = _Number()


def _json_type(value: object) -> str:
    if isinstance(value, _Pairs):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    if isinstance(value, str):
        return "a string"
    return "a number"


def parse_json_env(text: str, *, source: str = "input.json") -> list[tuple[str, str]]:
    """Parse a flat JSON object of NAME -> string; raise ValidationError naming key and problem."""
    check_document(text, source)
    try:
        doc = json.loads(
            text,
            object_pairs_hook=_Pairs,
            parse_int=lambda _: _NUMBER,
            parse_float=lambda _: _NUMBER,
            parse_constant=lambda _: _NUMBER,
        )
    except json.JSONDecodeError as e:
        raise ValidationError(
            f"{source}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}",
            hint='expected a flat object like {"API_KEY": "..."}',
        ) from None
    except RecursionError:
        raise ValidationError(
            f"{source}: JSON is nested too deeply", hint="expected a flat object of strings"
        ) from None
    if not isinstance(doc, _Pairs):
        raise ValidationError(
            f"{source}: the top level is {_json_type(doc)}, not an object",
            hint='expected a flat object like {"API_KEY": "..."}',
        )
    items: list[tuple[str, str]] = []
    seen: set[str] = set()
    for n, (key, value) in enumerate(doc, start=1):
        if not KEY_RE.match(key):
            raise ValidationError(
                f"{source}: key number {n} is not a valid variable name", hint=KEY_HINT
            )
        if key in seen:
            raise ValidationError(
                f"{source}: key {key!r} appears twice", hint="remove one of the two entries"
            )
        if not isinstance(value, str):
            kind = _json_type(value)
            fix = {"a number": "quote it", "a boolean": "quote it", "null": 'remove it or use ""'}
            raise ValidationError(
                f"{source}: key {key!r} is {kind}; {fix.get(kind, 'values must be strings')}",
                hint='every value must be a JSON string, e.g. {"PORT": "8080"}',
            )
        check_value(value, source, key)
        seen.add(key)
        items.append((key, value))
    return items


def dump_json_env(items: Iterable[tuple[str, str]]) -> str:
    """Write a pretty (indent 2) JSON object in the given order, with a trailing newline."""
    pairs = dict(checked_items(items, "cannot write JSON"))
    return json.dumps(pairs, indent=2, ensure_ascii=False) + "\n"
