"""The JSON env format must round-trip and refuse anything but a flat object of strings, safely."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credwarden.errors import ValidationError
from credwarden.formats.dotenv import MAX_VALUE_BYTES, dump_dotenv, parse_dotenv
from credwarden.formats.jsonenv import dump_json_env, parse_json_env

CANARY = "CANARY-s3cr3t-9f8e7d"

keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True)
values = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_characters="\x00")),
    st.text(alphabet=" \t\n\r\"'#$=\\\\{}[]:,abcé😀\u2028"),
)
item_lists = st.lists(st.tuples(keys, values), unique_by=lambda kv: kv[0], max_size=8)


@given(item_lists)
def test_round_trip(items: list[tuple[str, str]]) -> None:
    text = dump_json_env(items)
    assert text.endswith("\n")
    assert parse_json_env(text) == items


@given(item_lists)
def test_json_and_dotenv_agree(items: list[tuple[str, str]]) -> None:
    assert parse_json_env(dump_json_env(parse_dotenv(dump_dotenv(items)))) == items


@given(st.text())
def test_arbitrary_text_only_raises_validation_error(text: str) -> None:
    with contextlib.suppress(ValidationError):
        parse_json_env(text)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


@given(json_values)
def test_arbitrary_json_only_raises_validation_error(doc: object) -> None:
    try:
        result = parse_json_env(json.dumps(doc))
    except ValidationError:
        return
    assert isinstance(doc, dict)
    assert result == list(doc.items())


def test_dump_format_keeps_order() -> None:
    text = dump_json_env([("B", "2"), ("A", "é\n")])
    assert text == '{\n  "B": "2",\n  "A": "é\\n"\n}\n'
    assert dump_json_env([]) == "{}\n"


def test_accepts_flat_object() -> None:
    assert parse_json_env('{"A": "1", "_b": "", "C": "x\\u00e9"}') == [
        ("A", "1"),
        ("_b", ""),
        ("C", "xé"),
    ]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"A": "1",\n "B": }', "invalid JSON at line 2, column"),
        ("", "invalid JSON at line 1, column 1"),
        ('{"A": "1"} x', "invalid JSON"),
        ("[" * 100_000, "nested too deeply"),
        ('["A"]', "the top level is an array, not an object"),
        ('"A"', "the top level is a string, not an object"),
        ("null", "the top level is null, not an object"),
        ("3", "the top level is a number, not an object"),
        ('{"PORT": 8080}', "key 'PORT' is a number; quote it"),
        ('{"PORT": 1e999}', "key 'PORT' is a number; quote it"),
        ('{"PORT": NaN}', "key 'PORT' is a number; quote it"),
        ('{"N": 1' + "0" * 5000 + "}", "key 'N' is a number; quote it"),
        ('{"DEBUG": true}', "key 'DEBUG' is a boolean; quote it"),
        ('{"X": null}', "key 'X' is null"),
        ('{"X": ["a"]}', "key 'X' is an array"),
        ('{"X": {"Y": "a"}}', "key 'X' is an object"),
        ('{"A": "1", "A-B": "x"}', "key number 2 is not a valid variable name"),
        ('{"1A": "x"}', "key number 1 is not a valid variable name"),
        ('{"A": "1", "A": "2"}', "key 'A' appears twice"),
        ('{"A": "a\\u0000"}', "the value of A contains a NUL character"),
        ('{"A": "a\\ud800"}', "surrogate"),
    ],
)
def test_errors(text: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as exc:
        parse_json_env(text, source="secrets.json")
    assert str(exc.value).startswith("secrets.json: ")
    assert fragment in str(exc.value)
    assert exc.value.hint


def test_size_limits() -> None:
    ok = json.dumps({"K": "x" * MAX_VALUE_BYTES})
    assert parse_json_env(ok) == [("K", "x" * MAX_VALUE_BYTES)]
    with pytest.raises(ValidationError, match="the value of K is larger than 64 KiB"):
        parse_json_env(json.dumps({"K": "x" * (MAX_VALUE_BYTES + 1)}))
    big = json.dumps({f"K{i}": "x" * 60_000 for i in range(20)})
    with pytest.raises(ValidationError, match="larger than 1 MiB"):
        parse_json_env(big)


CANARY_DOCS = [
    f'{{"A": "{CANARY}',
    f'{{"A": {CANARY}}}',
    f'{{"A": "{CANARY}" {CANARY}}}',
    f'{{"A": "{CANARY}",}}',
    f'["{CANARY}"]',
    f'"{CANARY}"',
    f'{{"{CANARY}": "x"}}',
    f'{{"A": "{CANARY}", "A": "{CANARY}"}}',
    f'{{"A": ["{CANARY}"]}}',
    f'{{"A": {{"{CANARY}": "{CANARY}"}}}}',
    f'{{"A": "{CANARY}\\u0000"}}',
    f'{{"A": "{CANARY * 4000}"}}',
    f'{{"A": "{CANARY}\n"}}',
]


@pytest.mark.parametrize("text", CANARY_DOCS)
def test_errors_never_contain_values(text: str) -> None:
    with pytest.raises(ValidationError) as exc:
        parse_json_env(text)
    err = exc.value
    assert err.__cause__ is None
    assert err.__context__ is None or err.__suppress_context__  # no JSONDecodeError (holds .doc)
    for shown in (str(err), repr(err), err.message, err.hint or "", str(err.to_dict())):
        assert "CANARY" not in shown
        assert "s3cr3t" not in shown


@pytest.mark.parametrize(
    ("items", "fragment"),
    [
        ([("1A", CANARY)], "invalid variable name"),
        ([(CANARY, CANARY)], "invalid variable name"),
        ([("A", CANARY), ("A", CANARY)], "A appears twice"),
        ([("A", CANARY + "\x00")], "NUL"),
        ([("A", CANARY * 4000)], "64 KiB"),
    ],
)
def test_dump_refuses_what_parse_would_refuse(items: list[tuple[str, str]], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment) as exc:
        dump_json_env(items)
    assert "CANARY" not in str(exc.value)
