"""Strict .env reader and writer, hand-written on purpose.

python-dotenv is lenient (it warns and skips malformed lines); an import must instead refuse a
malformed file, naming the line, and store nothing. Errors never quote any part of a value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from ..errors import ValidationError

KEY_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
MAX_FILE_BYTES: Final = 1024 * 1024
MAX_VALUE_BYTES: Final = 64 * 1024
KEY_HINT: Final = "names are letters, digits and '_', not starting with a digit, e.g. API_KEY"

_WS: Final = " \t\r\f\v"
_BAD_CHAR_RE: Final = re.compile("[\x00\ud800-\udfff]")
_INLINE_COMMENT_RE: Final = re.compile(r"[ \t]#")
_DQ_SPECIAL_RE: Final = re.compile(r'["\\]')
_UNESCAPE: Final = {"\\": "\\", '"': '"', "n": "\n", "r": "\r", "t": "\t", "$": "$"}
_ESCAPE: Final = str.maketrans(
    {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "$": "\\$"}
)


def _bad_char(m: re.Match[str]) -> str:
    return "a NUL character" if m.group() == "\x00" else "an invalid (lone surrogate) character"


def check_document(text: str, source: str) -> None:
    """Refuse a document over 1 MiB (UTF-8)."""
    if len(text) > MAX_FILE_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise ValidationError(
            f"{source} is larger than 1 MiB", hint="split it into smaller files and import each"
        )


def check_value(value: str, where: str, key: str) -> None:
    """Refuse a value with NUL/surrogates or over 64 KiB; the message names only the key."""
    m = _BAD_CHAR_RE.search(value)
    if m:
        raise ValidationError(
            f"{where}: the value of {key} contains {_bad_char(m)}",
            hint="values must be text; store binary data base64-encoded",
        )
    if len(value) > MAX_VALUE_BYTES or len(value.encode("utf-8")) > MAX_VALUE_BYTES:
        raise ValidationError(
            f"{where}: the value of {key} is larger than 64 KiB",
            hint="store large data elsewhere and keep only a reference here",
        )


def checked_items(items: Iterable[tuple[str, str]], what: str) -> list[tuple[str, str]]:
    """Validate items before writing them: names, duplicates, value types and contents."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for n, (key, value) in enumerate(items, start=1):
        if not isinstance(key, str) or not KEY_RE.match(key):
            raise ValidationError(f"{what}: entry {n} has an invalid variable name", hint=KEY_HINT)
        if key in seen:
            raise ValidationError(f"{what}: {key} appears twice", hint="give each entry once")
        if not isinstance(value, str):
            raise ValidationError(f"{what}: the value of {key} is not text")
        check_value(value, what, key)
        seen.add(key)
        out.append((key, value))
    return out


def _error(source: str, lineno: int, what: str, hint: str) -> ValidationError:
    return ValidationError(f"{source}, line {lineno}: {what}", hint=hint)


def _split_assignment(body: str, source: str, lineno: int) -> tuple[str, str]:
    """Split `[export ]KEY=rest`; `export =x` and `export=x` assign the variable `export`."""
    if body.startswith("export") and body[6:7] in (" ", "\t"):
        rest = body[6:].lstrip(_WS)
        if rest and not rest.startswith("="):
            body = rest
    key_part, eq, rest = body.partition("=")
    if not eq:
        raise _error(
            source,
            lineno,
            "missing '=' (expected KEY=value)",
            "each line must be KEY=value, a comment starting with '#', or blank",
        )
    key = key_part.rstrip(_WS)
    if not KEY_RE.match(key):
        raise _error(source, lineno, "the name before '=' is not a valid variable name", KEY_HINT)
    return key, rest


def _check_after_quote(tail: str, source: str, lineno: int, key: str) -> None:
    tail = tail.lstrip(_WS)
    if tail and not tail.startswith("#"):
        raise _error(
            source,
            lineno,
            f"unexpected text after the closing quote of {key}",
            "only a comment starting with '#' may follow the closing quote",
        )


def _read_double(lines: list[str], i: int, line: str, source: str, key: str) -> tuple[str, int]:
    """Read a double-quoted value starting after the quote; return it and the next line index."""
    out: list[str] = []
    opened, j = i, 0
    while True:
        m = _DQ_SPECIAL_RE.search(line, j)
        if m is None:
            out.append(line[j:])
            i += 1
            if i >= len(lines):
                raise _error(
                    source,
                    opened + 1,
                    f"unterminated double quote in the value of {key}",
                    'add the closing "; write a " inside the value as \\"',
                )
            out.append("\n")
            line, j = lines[i], 0
            continue
        out.append(line[j : m.start()])
        if m.group() == '"':
            _check_after_quote(line[m.end() :], source, i + 1, key)
            return "".join(out), i + 1
        escaped = _UNESCAPE.get(line[m.end() : m.end() + 1])
        if escaped is None:
            raise _error(
                source,
                i + 1,
                f"unsupported backslash escape in the value of {key}",
                'inside double quotes use \\\\ \\" \\n \\r \\t or \\$ (or single quotes)',
            )
        out.append(escaped)
        j = m.end() + 1


def _parse_value(rest: str, lines: list[str], i: int, source: str, key: str) -> tuple[str, int]:
    """Parse what follows '=' on line i; return the value and the next line index."""
    v = rest.lstrip(_WS)
    if v.startswith("'"):
        end = v.find("'", 1)
        if end < 0:
            raise _error(
                source,
                i + 1,
                f"unterminated single quote in the value of {key}",
                "close the quote on the same line; for a value containing ' or a line break"
                " use double quotes",
            )
        _check_after_quote(v[end + 1 :], source, i + 1, key)
        return v[1:end], i + 1
    if v.startswith('"'):
        return _read_double(lines, i, v[1:], source, key)
    m = _INLINE_COMMENT_RE.search(rest)
    if m:
        rest = rest[: m.start()]
    return rest.strip(_WS), i + 1


def parse_dotenv(text: str, *, source: str = ".env") -> list[tuple[str, str]]:
    """Parse a .env file into (KEY, value) pairs in file order; raise ValidationError if malformed.

    No variable expansion is done: `$` is literal. CRLF line endings and a UTF-8 BOM are accepted.
    """
    check_document(text, source)
    m = _BAD_CHAR_RE.search(text)
    if m:
        raise _error(
            source,
            text.count("\n", 0, m.start()) + 1,
            f"contains {_bad_char(m)}",
            "a .env file must be UTF-8 text",
        )
    lines = text.removeprefix("\ufeff").replace("\r\n", "\n").split("\n")
    items: list[tuple[str, str]] = []
    first_seen: dict[str, int] = {}
    i = 0
    while i < len(lines):
        lineno = i + 1
        body = lines[i].lstrip(_WS)
        if not body.strip(_WS) or body.startswith("#"):
            i += 1
            continue
        key, rest = _split_assignment(body, source, lineno)
        if key in first_seen:
            raise _error(
                source,
                lineno,
                f"{key} is defined twice (first on line {first_seen[key]})",
                "remove one of the two definitions",
            )
        value, i = _parse_value(rest, lines, i, source, key)
        check_value(value, f"{source}, line {lineno}", key)
        first_seen[key] = lineno
        items.append((key, value))
    return items


def dump_dotenv(items: Iterable[tuple[str, str]]) -> str:
    """Write `KEY="value"` lines (escaping \\ " newline CR tab $) that parse_dotenv reads back."""
    return "".join(
        f'{key}="{value.translate(_ESCAPE)}"\n'
        for key, value in checked_items(items, "cannot write .env")
    )
