"""The .env parser must read what it writes and refuse malformed files without leaking values."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credwarden.errors import ValidationError
from credwarden.formats.dotenv import MAX_VALUE_BYTES, dump_dotenv, parse_dotenv

CANARY = "CANARY-s3cr3t-9f8e7d"

keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True)
values = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_characters="\x00")),
    st.text(alphabet=" \t\n\r\"'#$=\\\\abc`{}é😀\u2028\ufeff"),
)
item_lists = st.lists(st.tuples(keys, values), unique_by=lambda kv: kv[0], max_size=8)


@given(item_lists)
def test_round_trip(items: list[tuple[str, str]]) -> None:
    text = dump_dotenv(items)
    assert text == "" or text.endswith("\n")
    assert parse_dotenv(text) == items


@given(st.text())
def test_arbitrary_text_only_raises_validation_error(text: str) -> None:
    with contextlib.suppress(ValidationError):
        parse_dotenv(text)


@given(st.text(alphabet="AB_1= \t\n\r#'\"\\$nx"))
def test_dotenv_like_text_only_raises_validation_error(text: str) -> None:
    try:
        result = parse_dotenv(text)
    except ValidationError:
        return
    assert len({k for k, _ in result}) == len(result)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("export K=v", [("K", "v")]),
        ("export\tK=v", [("K", "v")]),
        ("K='a b'", [("K", "a b")]),
        ("K='a \\n \"b\" $x #c'", [("K", 'a \\n "b" $x #c')]),
        ('K="a\\nb"', [("K", "a\nb")]),
        ('K="a\\\\ \\" \\r \\t \\$HOME"', [("K", 'a\\ " \r \t $HOME')]),
        ('K="line1\nline2  \n  line3"', [("K", "line1\nline2  \n  line3")]),
        ("K=v # comment", [("K", "v")]),
        ("K=v\t# comment", [("K", "v")]),
        ("K=v#not-a-comment", [("K", "v#not-a-comment")]),
        ("K= #comment", [("K", "")]),
        ("K=", [("K", "")]),
        ("K=''", [("K", "")]),
        ('K=""', [("K", "")]),
        ("K=  spaced value  ", [("K", "spaced value")]),
        ("K = v", [("K", "v")]),
        ("K=a=b", [("K", "a=b")]),
        ("K=$OTHER", [("K", "$OTHER")]),
        ("K='v' # c", [("K", "v")]),
        ('K="v"   # c', [("K", "v")]),
        ('K="v"  ', [("K", "v")]),
        ("export=1", [("export", "1")]),
        ("export =1", [("export", "1")]),
        ("# comment\n\n   \n  # indented\nA=1\n", [("A", "1")]),
        ("A=1\r\nB='2'\r\n", [("A", "1"), ("B", "2")]),
        ("\ufeffA=1", [("A", "1")]),
        ("_a9=x\nB_=y", [("_a9", "x"), ("B_", "y")]),
        ("", []),
    ],
)
def test_quoting_forms(text: str, expected: list[tuple[str, str]]) -> None:
    assert parse_dotenv(text) == expected


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("A=1\nJUST_A_WORD\n", 2, "missing '='"),
        ("export K\n", 1, "missing '='"),
        ("1A=x", 1, "not a valid variable name"),
        ("A-B=x", 1, "not a valid variable name"),
        ("A B=x", 1, "not a valid variable name"),
        ("=x", 1, "not a valid variable name"),
        ("\n\nK='abc", 3, "unterminated single quote"),
        ("K='abc\ndef'", 1, "unterminated single quote"),
        ('A=1\nK="abc\nd\ne', 2, "unterminated double quote"),
        ('K="abc\\"', 1, "unterminated double quote"),
        ("K='a' b", 1, "after the closing quote"),
        ('K="a"b', 1, "after the closing quote"),
        ('K="a\nb" c', 2, "after the closing quote"),
        ('K="a\\qb"', 1, "unsupported backslash escape"),
        ('K="a\nb\\', 2, "unsupported backslash escape"),
        ("A=1\nB=2\nA=3", 3, "defined twice (first on line 1)"),
        ("A=1\nB=2\x00", 2, "NUL character"),
        ("A=1\n\nB=\ud800", 3, "surrogate"),
    ],
)
def test_errors_name_source_and_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(ValidationError) as exc:
        parse_dotenv(text, source="prod.env")
    message = str(exc.value)
    assert message.startswith(f"prod.env, line {line}: ")
    assert fragment in message
    assert exc.value.hint


def test_duplicate_names_the_key() -> None:
    with pytest.raises(ValidationError, match="API_KEY is defined twice"):
        parse_dotenv("API_KEY=a\nAPI_KEY=b")


def test_value_limit() -> None:
    assert parse_dotenv("K=" + "x" * MAX_VALUE_BYTES) == [("K", "x" * MAX_VALUE_BYTES)]
    with pytest.raises(ValidationError, match=r"line 2: the value of K is larger than 64 KiB"):
        parse_dotenv("A=1\nK=" + "x" * (MAX_VALUE_BYTES + 1))
    # the limit is in UTF-8 bytes, not characters
    with pytest.raises(ValidationError, match="larger than 64 KiB"):
        parse_dotenv("K=" + "é" * (MAX_VALUE_BYTES // 2 + 1))


def test_file_limit() -> None:
    big = "".join(f"K{i}={'x' * 1000}\n" for i in range(1100))
    with pytest.raises(ValidationError, match="larger than 1 MiB"):
        parse_dotenv(big, source="big.env")


CANARY_FILES = [
    CANARY,
    f"A=1\n{CANARY} more words",
    f"{CANARY}=1",
    f"K={CANARY} x={CANARY}\nK-2={CANARY}",
    f"K='{CANARY}",
    f'K="{CANARY}',
    f'K="{CANARY}\n{CANARY}',
    f"K='{CANARY}' {CANARY}",
    f'K="{CANARY}"{CANARY}',
    f'K="{CANARY}\\{CANARY}"',
    f"K={CANARY}\nK={CANARY}",
    f"K={CANARY}\x00",
    f"K={CANARY}{'x' * MAX_VALUE_BYTES}",
    f"export {CANARY}",
]


@pytest.mark.parametrize("text", CANARY_FILES)
def test_errors_never_contain_values(text: str) -> None:
    with pytest.raises(ValidationError) as exc:
        parse_dotenv(text)
    err = exc.value
    for shown in (str(err), repr(err), err.message, err.hint or "", str(err.to_dict())):
        assert "CANARY" not in shown
        assert "s3cr3t" not in shown


def test_dump_format() -> None:
    assert dump_dotenv([("A", "1"), ("B", 'x"y\\$z\n\r\t')]) == (
        'A="1"\nB="x\\"y\\\\\\$z\\n\\r\\t"\n'
    )
    assert dump_dotenv([]) == ""


@pytest.mark.parametrize(
    ("items", "fragment"),
    [
        ([("1A", CANARY)], "invalid variable name"),
        ([("A B", CANARY)], "invalid variable name"),
        ([("", CANARY)], "invalid variable name"),
        ([(CANARY, CANARY)], "invalid variable name"),
        ([("A", CANARY), ("A", CANARY)], "A appears twice"),
        ([("A", CANARY + "\x00")], "NUL"),
        ([("A", CANARY * 4000)], "64 KiB"),
    ],
)
def test_dump_refuses_what_parse_would_refuse(items: list[tuple[str, str]], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment) as exc:
        dump_dotenv(items)
    assert "CANARY" not in str(exc.value)
