"""The row decoder: every malformed body becomes one StoreCorrupt naming the row, and no
module decodes a stored body on its own (new record kinds go through `store/rows.py` too)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from credwarden.errors import StoreCorrupt
from credwarden.store import rows
from credwarden.store.rows import COUNT, STR, TIME, list_of, map_of, opt

SHAPE = rows.Shape(
    "thing",
    {"name": STR, "n": COUNT},
    {"when": opt(TIME), "tags": map_of(STR), "links": list_of(STR)},
)
WHERE = rows.record_name("thing", "a/b")


def test_a_good_body_keeps_only_the_named_fields() -> None:
    body = b'{"name": "x", "n": 3, "when": "2026-01-02T03:04:05.000000Z", "extra": 1}'
    assert SHAPE.decode(body, WHERE) == {"name": "x", "n": 3, "when": "2026-01-02T03:04:05.000000Z"}
    assert SHAPE.decode(body.decode(), WHERE)["n"] == 3  # TEXT where a BLOB belongs


def test_an_open_shape_keeps_the_rest() -> None:
    shape = rows.Shape("settings", {"name": STR}, open=True)
    assert shape.decode(b'{"name": "x", "later": [1]}', WHERE) == {"name": "x", "later": [1]}


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"{not json", "its body is not valid JSON"),
        (b"\xff\x00\xfe", "its body is not UTF-8"),
        (b"[]", "a thing must be a JSON object"),
        (b"null", "a thing must be a JSON object"),
        (b"1e999", "its body holds an out-of-range number"),
        (b'{"name": "x", "n": NaN}', "its body is not valid JSON"),
        (b'{"name": "x", "n": Infinity}', "its body is not valid JSON"),
        (b"[" * 100_000, "its body is not valid JSON"),
        (b"{}", "its thing has no 'name'"),
        (b'{"name": 1, "n": 1}', "its thing has a malformed 'name'"),
        (b'{"name": "x", "n": -1}', "its thing has a malformed 'n'"),
        (b'{"name": "x", "n": true}', "its thing has a malformed 'n'"),
        (b'{"name": "x", "n": 100000000000000000000000}', "its thing has a malformed 'n'"),
        (b'{"name": "x", "n": 1, "when": "yesterday"}', "its thing has a malformed 'when'"),
        (b'{"name": "x", "n": 1, "tags": {"a": 1}}', "its thing has a malformed 'tags'"),
        (b'{"name": "x", "n": 1, "links": "x"}', "its thing has a malformed 'links'"),
    ],
)
def test_a_malformed_body_is_store_corrupt_naming_the_row(body: bytes, why: str) -> None:
    with pytest.raises(StoreCorrupt) as e:
        SHAPE.decode(body, WHERE)
    assert e.value.message == f"the stored thing record 'a/b' is corrupt ({why})"
    assert e.value.exit_code == 1 and e.value.code == "store_corrupt"
    assert "audit verify" in (e.value.hint or "")


def test_a_body_of_another_type_is_corrupt() -> None:
    with pytest.raises(StoreCorrupt, match="its body is a int"):
        rows.text(12, WHERE)  # type: ignore[arg-type]
    with pytest.raises(StoreCorrupt, match="its revision is not an integer"):
        rows.integer("3", WHERE, "revision")


def test_no_module_decodes_a_stored_body_itself() -> None:
    """`json.loads(...body...)` or `.body.decode()` outside the decoder would bypass it."""
    src = Path(rows.__file__).resolve().parents[1]
    offenders = []
    for path in src.rglob("*.py"):
        text = path.read_text()
        for pattern in (r"json\.loads\([^)]*\.body", r"\.body\.decode\("):
            if re.search(pattern, text):
                offenders.append(f"{path.relative_to(src)}: {pattern}")
    assert offenders == []
