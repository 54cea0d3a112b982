"""Invariant 6: bad input gets a clear error (the right class, a message saying what is wrong,
a hint saying what to do) and changes nothing: the database is the same, row for row."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from credwarden import Warden
from credwarden.errors import (
    CredwardenError,
    InvalidAddress,
    UnknownEnvironment,
    UnknownKind,
    ValidationError,
)
from credwarden.settings import Settings
from credwarden.timeutil import parse_duration, parse_when
from tests.rawdb import snapshot

A = "prod/stripe/billing"  # exists: an api_key
NEW = "prod/stripe/new"


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Warden, str]]:
    """One store per backend for the whole module: every case must leave it as it was."""
    home: Path = tmp_path_factory.mktemp("bad-input")
    cm: contextlib.AbstractContextManager[str]
    if request.param == "sqlite":
        cm = contextlib.nullcontext(f"sqlite:///{home / 'cw.db'}")
    else:
        from tests.pg import fresh_database

        cm = fresh_database()
    with cm as url:
        w, _ = Warden.init(settings=Settings.from_env({}, home=str(home), database_url=url))
        try:
            w.add(A, "api_key", {"api_key": "sk_live_1"})
            w.add("prod/db/main", "basic", {"username": "u", "password": "p"})
            yield w, url
        finally:
            w.close()


Op = Callable[[Warden], Any]


def case(
    id_: str,
    op: Op,
    error: type[CredwardenError],
    says: str,
    *marks: pytest.MarkDecorator,
) -> Any:
    return pytest.param(op, error, says, id=id_, marks=marks)


def add(address: str = NEW, kind: str = "api_key", **fields: Any) -> Op:
    return lambda w: w.add(address, kind, fields or {"api_key": "k"})


def add_meta(**meta: Any) -> Op:
    return lambda w: w.add(NEW, "secret", {"value": "v"}, **meta)


CASES = [
    # Addresses.
    case("address-upper", add("Prod/stripe/x"), InvalidAddress, "environment"),
    case("address-upper-name", add("prod/stripe/Billing"), InvalidAddress, "name"),
    case("address-space", add("prod/str ipe/x"), InvalidAddress, "service"),
    case("address-dotdot", add("prod/../x"), InvalidAddress, "'..'"),
    case("address-dot", add("prod/./x"), InvalidAddress, "'.'"),
    case("address-dot-start", add("prod/stripe/.x"), InvalidAddress, "name"),
    case("address-empty-segment", add("prod//x"), InvalidAddress, "empty"),
    case("address-empty", add(""), InvalidAddress, "3 parts"),
    case("address-2-parts", add("prod/stripe"), InvalidAddress, "got 2"),
    case("address-4-parts", add("prod/stripe/a/b"), InvalidAddress, "got 4"),
    case("address-long", add("prod/stripe/" + "x" * 65), InvalidAddress, "64"),
    case("address-nul", add("prod/stripe/x\x00y"), InvalidAddress, "name"),
    case("address-unicode", add("prod/strípe/x"), InvalidAddress, "service"),
    case("field-space", lambda w: w.get(A + "#api key"), InvalidAddress, "field"),
    case("field-empty", lambda w: w.get(A + "#"), InvalidAddress, "field"),
    case("update-bad-address", lambda w: w.update("x/y", description="d"), InvalidAddress, "3"),
    case("remove-bad-address", lambda w: w.remove("PROD/x/y"), InvalidAddress, "environment"),
    # Kinds and fields.
    case("unknown-kind", add(kind="apikey", api_key="k"), UnknownKind, "apikey"),
    case("missing-field", add(kind="basic", username="u"), ValidationError, "password"),
    case("empty-field", add(kind="secret", value=""), ValidationError, "value"),
    case("unknown-field", add(api_key="k", token="t"), ValidationError, "token"),
    case("too-large", add(kind="secret", value="x" * (64 * 1024 + 1)), ValidationError, "64 KiB"),
    case("too-large-utf8", add(kind="secret", value="é" * (32 * 1024 + 1)), ValidationError, "64"),
    case("nul", add(kind="secret", value="a\x00b"), ValidationError, "NUL"),
    case("api-key-space", add(api_key="sk live"), ValidationError, "spaces"),
    case("api-key-newline", add(api_key="sk_live\n"), ValidationError, "line break"),
    case("api-key-tab", add(api_key="\tsk_live"), ValidationError, "control"),
    case("api-key-nbsp", add(api_key="sk\u00a0live"), ValidationError, "spaces"),
    case(
        "password-newline",
        add(kind="basic", username="u", password="p\n"),
        ValidationError,
        "password",
    ),
    case("username-colon", add(kind="basic", username="a:b", password="p"), ValidationError, "':'"),
    case("env-var-name-digit", add(kind="env", **{"1BAD": "x"}), ValidationError, "1BAD"),
    case("env-var-name-dash", add(kind="env", **{"BAD-NAME": "x"}), ValidationError, "BAD-NAME"),
    case("env-no-fields", lambda w: w.add(NEW, "env", {}), ValidationError, "at least one"),
    case("api-key-env-var", add(api_key="k", env_var="not valid"), ValidationError, "env_var"),
    case("secret-env-var", add(kind="secret", value="v", env_var="1X"), ValidationError, "env_var"),
    case("unknown-environment", add("qa/stripe/x"), UnknownEnvironment, "qa"),
    case(
        "import-bad-name",
        lambda w: w.import_entries([("OK", "1"), ("1BAD", "2")], env="prod", service="s"),
        ValidationError,
        "1BAD",
    ),
    case(
        "import-nul",
        lambda w: w.import_entries([("X", "a\x00")], env="prod", service="s"),
        ValidationError,
        "NUL",
    ),
    case(
        "import-same-address",
        lambda w: w.import_entries([("A_B", "1"), ("a_b", "2")], env="prod", service="s"),
        ValidationError,
        "prod/s/a-b",
    ),
    case(
        "import-nothing",
        lambda w: w.import_entries([], env="prod", service="s"),
        ValidationError,
        "nothing",
    ),
    case("add-environment", lambda w: w.add_environment("Q A"), ValidationError, "Q A"),
    case(
        "update-with-space",
        lambda w: w.update(A, fields={"api_key": "a b"}),
        ValidationError,
        "spaces",
    ),
    case(
        "update-unknown-field",
        lambda w: w.update(A, fields={"token": "t"}),
        ValidationError,
        "token",
    ),
    case("update-nothing", lambda w: w.update(A), ValidationError, "nothing"),
    case("list-bad-env", lambda w: w.list(env="PROD"), ValidationError, "PROD"),
    case("list-bad-kind", lambda w: w.list(kind="apikey"), UnknownKind, "apikey"),
    case("field-empty-basic", lambda w: w.get("prod/db/main#"), InvalidAddress, "field"),
    # Metadata.
    case("tag-key", add_meta(tags={"Bad Key": "v"}), ValidationError, "tag"),
    case("tag-value-long", add_meta(tags={"team": "x" * 300}), ValidationError, "tag"),
    case("tag-value-not-text", add_meta(tags={"team": 5}), ValidationError, "tag"),
    case("link-scheme", add_meta(links=["ftp://example.com"]), ValidationError, "link"),
    case("link-js", add_meta(links=["javascript:alert(1)"]), ValidationError, "link"),
    case(
        "description-long",
        add_meta(description="x" * 2001),
        ValidationError,
        "description",
    ),
    case("owner-long", add_meta(owner="x" * 2001), ValidationError, "owner"),
    case(
        "expires-garbage",
        add_meta(expires_at="next tuesday"),
        ValidationError,
        "expires_at",
    ),
    case("rotate-negative", add_meta(rotate_every=-5), ValidationError, "rotate_every"),
    case("rotate-string", add_meta(rotate_every="90d"), ValidationError, "rotate_every"),
    case(
        "update-unknown-metadata",
        lambda w: w.update(A, colour="blue"),
        ValidationError,
        "colour",
    ),
    case("env-vars-bad-env", lambda w: w.env_vars(env="PROD"), ValidationError, "PROD"),
    case("field-not-text", add(kind="secret", value=5), ValidationError, "text"),
    case(
        "too-many-fields",
        add(kind="env", **{f"V{i}": "x" for i in range(257)}),
        ValidationError,
        "256",
    ),
    case("rollback-current", lambda w: w.rollback(A, 1), ValidationError, "current"),
    case(
        "expires-number",
        add_meta(expires_at=20270101),
        ValidationError,
        "expires_at",
    ),
    case("lone-surrogate", add(kind="secret", value="abc\ud800"), ValidationError, "value"),
    # Durations and dates as users type them.
    case("duration-unit", lambda w: parse_duration("90x"), ValidationError, "90x"),
    case("duration-empty", lambda w: parse_duration(""), ValidationError, "duration"),
    case("duration-zero", lambda w: parse_duration("0d"), ValidationError, "0d"),
    case("duration-negative", lambda w: parse_duration("-5d"), ValidationError, "-5d"),
    case("duration-trailing", lambda w: parse_duration("5d junk"), ValidationError, "5d junk"),
    case("date-month", lambda w: parse_when("2027-13-01"), ValidationError, "2027-13-01"),
    case("date-words", lambda w: parse_when("tomorrow"), ValidationError, "tomorrow"),
    case("date-relative-unit", lambda w: parse_when("+5y"), ValidationError, "5y"),
]


@pytest.mark.parametrize(("op", "error", "says"), CASES)
def test_bad_input_is_refused_cleanly(
    shared: tuple[Warden, str], op: Op, error: type[CredwardenError], says: str
) -> None:
    w, url = shared
    before = snapshot(url)
    with pytest.raises(CredwardenError) as info:
        op(w)
    exc = info.value
    assert type(exc) is error, f"{type(exc).__name__}: {exc}"
    assert exc.exit_code == 2
    assert says in exc.message, exc.message
    assert len(exc.message) < 400  # a huge or hostile input is not echoed back whole
    assert exc.hint, f"no hint for: {exc.message}"
    assert snapshot(url) == before


def test_boundaries_are_accepted(shared: tuple[Warden, str]) -> None:
    """What is just inside the limits is stored and read back unchanged."""
    w, _ = shared
    big = "x" * (64 * 1024)
    w.add("prod/limits/big", "secret", {"value": big})
    assert w.get("prod/limits/big").reveal() == big
    odd = "línea\ttab \"quote\" 'single' \\ é😀 \u2028 end"
    w.add("prod/limits/odd", "secret", {"value": odd})
    assert w.get("prod/limits/odd").reveal() == odd
    w.add("prod/limits/" + "n" * 64, "secret", {"value": "v"})
    w.add("prod/limits/env", "env", {f"V{i}": str(i) for i in range(256)})
    assert w.get("prod/limits/env#V255").reveal() == "255"
    for address in ("prod/limits/big", "prod/limits/odd", "prod/limits/" + "n" * 64):
        w.remove(address)
    w.remove("prod/limits/env")
