"""Addresses are the one name of a credential: valid ones must round-trip, anything else refused."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credwarden.address import (
    MAX_SEGMENT,
    Address,
    check_pattern,
    matches,
    parse_address,
    parse_ref,
)
from credwarden.errors import InvalidAddress

segments = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,63}", fullmatch=True)
addresses = st.builds(lambda e, s, n: f"{e}/{s}/{n}", segments, segments, segments)
fields = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}", fullmatch=True)


@given(addresses)
def test_valid_addresses_round_trip(text: str) -> None:
    address = parse_address(text)
    assert str(address) == text
    assert parse_address(str(address)) == address
    assert parse_address("cw://" + text) == address


@given(st.text())
def test_arbitrary_text_parses_or_raises_invalid_address(text: str) -> None:
    try:
        address = parse_address(text)
    except InvalidAddress:
        return
    assert str(address) == text.removeprefix("cw://")
    assert parse_address(str(address)) == address


@given(st.text(alphabet="ab0._-/A #*:"))
def test_address_like_text_parses_or_raises_invalid_address(text: str) -> None:
    try:
        address = parse_address(text)
    except InvalidAddress:
        return
    assert str(address) == text.removeprefix("cw://")


@given(st.text())
def test_arbitrary_ref_parses_or_raises_invalid_address(text: str) -> None:
    try:
        address, field = parse_ref(text)
    except InvalidAddress:
        return
    assert str(address) + (f"#{field}" if field is not None else "") == text.removeprefix("cw://")


@given(addresses, fields)
def test_refs_with_fields_round_trip(text: str, field: str) -> None:
    assert parse_ref(f"{text}#{field}") == (parse_address(text), field)


@pytest.mark.parametrize(
    "text",
    [
        "Prod/stripe/billing",
        "prod/Stripe/billing",
        "prod/stripe/BILLING",
        "prod/stripe/bill ing",
        " prod/stripe/billing",
        "prod/stripe/billing ",
        "prod/stripe/billing\n",
        "../stripe/billing",
        "prod/../billing",
        "prod/stripe/..",
        "./stripe/billing",
        "prod/./billing",
        "prod/stripe/.",
        ".hidden/stripe/billing",
        "-x/stripe/billing",
        "_x/stripe/billing",
        "prod//billing",
        "/stripe/billing",
        "prod/stripe/",
        "//",
        "",
        "prod/stripe",
        "prod",
        "prod/stripe/billing/extra",
        "a/b/c/d",
        "prod/stripe/billing/",
        "/prod/stripe/billing",
        "x" * (MAX_SEGMENT + 1) + "/stripe/billing",
        "prod/" + "x" * (MAX_SEGMENT + 1) + "/billing",
        "prod/stripe/" + "x" * (MAX_SEGMENT + 1),
        "prod/stripe/billing#api_key",
        "prod/stripé/billing",
        "prod/stripe/bill*",
        "cw://",
        "cw://prod/stripe",
        "cw://cw://prod/stripe/billing",
    ],
)
def test_refused(text: str) -> None:
    with pytest.raises(InvalidAddress) as exc:
        parse_address(text)
    assert exc.value.message
    assert exc.value.exit_code == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("prod/stripe/billing", Address("prod", "stripe", "billing")),
        ("cw://prod/stripe/billing", Address("prod", "stripe", "billing")),
        ("0/1/2", Address("0", "1", "2")),
        ("a.b/c_d/e-f", Address("a.b", "c_d", "e-f")),
        ("x" * MAX_SEGMENT + "/b/c", Address("x" * MAX_SEGMENT, "b", "c")),
    ],
)
def test_accepted(text: str, expected: Address) -> None:
    assert parse_address(text) == expected


def test_error_names_the_bad_part() -> None:
    with pytest.raises(InvalidAddress, match="the service"):
        parse_address("prod/Stripe/billing")
    with pytest.raises(InvalidAddress, match=r"expected 3 parts.*got 2"):
        parse_address("prod/stripe")
    with pytest.raises(InvalidAddress, match="the name is empty"):
        parse_address("prod/stripe/")


def test_non_text_is_refused() -> None:
    with pytest.raises(InvalidAddress):
        parse_address(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("prod/stripe/billing", (Address("prod", "stripe", "billing"), None)),
        ("prod/stripe/billing#api_key", (Address("prod", "stripe", "billing"), "api_key")),
        ("cw://prod/stripe/billing#API_KEY", (Address("prod", "stripe", "billing"), "API_KEY")),
        ("prod/stripe/billing#a.b-c", (Address("prod", "stripe", "billing"), "a.b-c")),
    ],
)
def test_parse_ref(text: str, expected: tuple[Address, str | None]) -> None:
    assert parse_ref(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "prod/stripe/billing#",
        "prod/stripe/billing#1key",
        "prod/stripe/billing#a b",
        "prod/stripe/billing#a#b",
        "prod/stripe/billing#" + "k" * 129,
        "prod/stripe#key",
        "Prod/stripe/billing#key",
    ],
)
def test_parse_ref_refused(text: str) -> None:
    with pytest.raises(InvalidAddress):
        parse_ref(text)


@pytest.mark.parametrize(
    ("pattern", "address", "expected"),
    [
        ("prod/stripe/*", "prod/stripe/billing", True),
        ("prod/stripe/*", "prod/stripe/x", True),
        ("prod/stripe/*", "prod/github/billing", False),
        ("prod/stripe/*", "staging/stripe/billing", False),
        ("*/github/*", "prod/github/ci", True),
        ("*/github/*", "dev/github/deploy", True),
        ("*/github/*", "prod/gitlab/ci", False),
        ("prod", "prod/stripe/billing", True),
        ("prod", "prod/github/ci", True),
        ("prod", "production/stripe/billing", False),
        ("prod", "staging/stripe/billing", False),
        ("prod/stripe", "prod/stripe/billing", True),
        ("prod/stripe", "prod/stripe-eu/billing", False),
        ("prod/stripe/billing", "prod/stripe/billing", True),
        ("prod/stripe/bill*", "prod/stripe/billing", True),
        ("*/*/*", "a/b/c", True),
        ("*", "a/b/c", True),
    ],
)
def test_matches(pattern: str, address: str, expected: bool) -> None:
    assert matches(pattern, parse_address(address)) is expected
    assert matches(pattern, address) is expected
    assert check_pattern(pattern) == pattern


@given(addresses)
def test_every_address_matches_itself_and_its_prefixes(text: str) -> None:
    address = parse_address(text)
    env, service, _ = text.split("/")
    assert matches(text, address)
    assert matches(env, address)
    assert matches(f"{env}/{service}", address)
    assert matches(f"*/{service}/*", address)


@pytest.mark.parametrize(
    "pattern",
    ["", "prod/", "/prod", "prod//x", "a/b/c/d", "Prod/*", "prod/[ab]/*", "prod stripe"],
)
def test_check_pattern_refuses(pattern: str) -> None:
    with pytest.raises(InvalidAddress):
        check_pattern(pattern)


def test_matches_with_too_many_parts_is_false_or_invalid_address() -> None:
    with contextlib.suppress(InvalidAddress):
        assert matches("a/b/c/d", parse_address("a/b/c")) is False
