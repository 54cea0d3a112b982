"""`add`, `show`, `list`, `update`, `rm`, `history`, `rollback`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import CANARY, CLI


def test_add_from_stdin_strips_one_line_break(cli: CLI) -> None:
    assert cli("init").code == 0
    r = cli("add", "dev/a/crlf", "--kind", "secret", "--stdin", input="line\r\n")
    assert (r.code, r.out) == (0, "added dev/a/crlf (secret, version 1)\n")
    assert cli("get", "dev/a/crlf").out == "line\n"
    assert cli("add", "dev/a/two", "--kind", "secret", "--stdin", input="v\n\n").code == 0
    assert cli("get", "dev/a/two", "-n").out == "v\n"


def test_add_with_empty_stdin_is_a_usage_error(cli: CLI) -> None:
    assert cli("init").code == 0
    r = cli("add", "dev/a/b", "--kind", "secret", "--stdin", input="")
    assert r.code == 2
    assert "empty" in r.err


def test_add_json_shows_masked_fields(cli: CLI) -> None:
    assert cli("init").code == 0
    r = cli(
        "add", "dev/gh/bot", "--kind", "api_key", "--stdin", "--json",
        "--field", "env_var=GH_TOKEN", "--owner", "ops", "--tag", "team=infra",
        "--link", "https://example.com/docs", "--expires", "2099-01-31", "--rotate-every", "90d",
        input=CANARY,
    )  # fmt: skip
    assert r.code == 0, r
    info = json.loads(r.out)
    assert info["version"] == 1
    assert info["fields"] == {"api_key": "••••••••", "env_var": "GH_TOKEN"}
    assert info["owner"] == "ops"
    assert info["tags"] == {"team": "infra"}
    assert info["links"] == ["https://example.com/docs"]
    assert info["expires_at"].startswith("2099-01-31")
    assert info["rotate_every"] == 90 * 86400
    assert CANARY not in r.out + r.err


def test_secret_prompt_is_refused_without_a_terminal(cli: CLI) -> None:
    assert cli("init").code == 0
    r = cli("add", "dev/a/b", "--kind", "api_key")
    assert r.code == 2
    assert "api_key is needed and standard input is not a terminal" in r.err
    assert "--stdin" in r.err
    assert json.loads(cli("list", "--json").out) == []


def test_secret_on_the_command_line_warns_without_echoing_it(cli: CLI) -> None:
    assert cli("init").code == 0
    r = cli("add", "dev/a/b", "--kind", "basic", "--field", "username=bob",
            "--field", f"password={CANARY}")  # fmt: skip
    assert r.code == 0, r
    assert "warning: --field password=..." in r.err
    assert "username" not in r.err
    assert CANARY not in r.out + r.err


@pytest.mark.parametrize(
    "args",
    [
        ["--field", "novalue"],
        ["--tag", "team"],
        ["--stdin", "--from-file", __file__],
    ],
)
def test_malformed_options_are_usage_errors(store: CLI, args: list[str]) -> None:
    r = store("add", "dev/x/y", "--kind", "secret", *args, input="v")
    assert r.code == 2
    assert "Usage:" in r.err or "error:" in r.err
    assert [i["address"] for i in json.loads(store("list", "--json").out)] == ["dev/stripe/billing"]


def test_malformed_field_message_does_not_echo_the_argument(store: CLI) -> None:
    r = store("add", "dev/x/y", "--kind", "secret", "--field", CANARY)
    assert r.code == 2
    assert "NAME=VALUE" in r.err
    assert CANARY not in r.err


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["add", "Bad/Address", "--kind", "secret", "--stdin"], 2),
        (["add", "dev/x/y", "--kind", "nope", "--stdin"], 2),
        (["add", "dev/x/y", "--kind", "api_key", "--stdin", "--expires", "soon"], 2),
        (["add", "dev/x/y", "--kind", "api_key", "--stdin", "--rotate-every", "often"], 2),
        (["add", "dev/x/y", "--kind", "env", "--stdin"], 2),
        (["add"], 2),
        (["show", "dev/no/such"], 4),
        (["history", "dev/no/such"], 4),
        (["rm", "--yes", "dev/no/such"], 4),
        (["list", "--health", "sick"], 2),
        (["nosuchcommand"], 2),
    ],
)
def test_exit_codes(store: CLI, args: list[str], code: int) -> None:
    r = store(*args, input="value")
    assert r.code == code, r


def test_add_existing_is_a_conflict(store: CLI) -> None:
    r = store("add", "dev/stripe/billing", "--kind", "api_key", "--stdin", input="other")
    assert r.code == 6
    assert "already exists" in r.err
    assert store("get", "dev/stripe/billing").out == CANARY + "\n"


def test_add_from_file_keeps_the_content_as_is(store: CLI, tmp_path: Path) -> None:
    pem = "-----BEGIN KEY-----\nabc\n-----END KEY-----\n"
    path = tmp_path / "key.pem"
    path.write_text(pem)
    r = store("add", "dev/tls/cert", "--kind", "secret", "--from-file", str(path))
    assert r.code == 0, r
    assert store("get", "dev/tls/cert", "-n").out == pem
    missing = store("add", "dev/tls/x", "--kind", "secret", "--from-file", str(tmp_path / "no"))
    assert missing.code == 2


def test_show_masks_secrets_and_lists_versions(store: CLI) -> None:
    r = store("show", "dev/stripe/billing")
    assert r.code == 0
    assert "dev/stripe/billing" in r.out
    assert "api_key" in r.out
    assert "••••••••" in r.out
    assert "health" in r.out
    assert "VERSION" in r.out
    assert CANARY not in r.out + r.err
    data = json.loads(store("show", "dev/stripe/billing", "--json").out)
    assert data["fields"] == {"api_key": "••••••••"}
    assert [v["version"] for v in data["versions"]] == [1]


def test_list_table_filters_and_json(store: CLI) -> None:
    assert store("add", "prod/db/main", "--kind", "secret", "--stdin", input="pw").code == 0
    r = store("list")
    assert r.code == 0
    header = r.out.splitlines()[0].split()
    assert header == ["ADDRESS", "KIND", "VERSION", "HEALTH", "OWNER", "LAST", "USED"]
    assert "dev/stripe/billing" in r.out and "prod/db/main" in r.out
    assert [i["address"] for i in json.loads(store("list", "--json", "--env", "prod").out)] == [
        "prod/db/main"
    ]
    assert json.loads(store("list", "--json", "--kind", "api_key").out)[0]["kind"] == "api_key"
    assert json.loads(store("list", "--json", "--service", "nothing").out) == []
    nothing = store("list", "--service", "nothing")
    assert (nothing.code, nothing.out) == (0, "")
    assert "no credentials" in nothing.err


def test_list_of_an_empty_store(cli: CLI) -> None:
    assert cli("init").code == 0
    r = cli("list")
    assert (r.code, r.out) == (0, "")
    assert "credwarden add" in r.err
    assert json.loads(cli("list", "--json").out) == []


def test_update_value_metadata_and_version_guard(store: CLI) -> None:
    r = store("update", "dev/stripe/billing", "--stdin", "--if-version", "1", input="new-key\n")
    assert r.code == 0, r
    assert "version 2" in r.out
    assert store("get", "dev/stripe/billing").out == "new-key\n"

    stale = store("update", "dev/stripe/billing", "--stdin", "--if-version", "1", input="x")
    assert stale.code == 6
    assert "version 2" in stale.err
    assert store("get", "dev/stripe/billing").out == "new-key\n"

    store("update", "dev/stripe/billing", "--tag", "team=pay", "--tag", "tier=gold")
    store("update", "dev/stripe/billing", "--tag", "tier=silver", "--owner", "ann")
    info = json.loads(store("show", "dev/stripe/billing", "--json").out)
    assert info["tags"] == {"team": "pay", "tier": "silver"}
    assert info["owner"] == "ann"
    assert info["version"] == 2

    r = store("update", "dev/stripe/billing", "--clear-tags", "--expires", "never", "--json")
    assert r.code == 0
    info = json.loads(r.out)
    assert info["tags"] == {}
    assert info["expires_at"] is None

    assert store("update", "dev/stripe/billing").code == 2  # nothing to update


def test_update_unset_field(store: CLI) -> None:
    store("update", "dev/stripe/billing", "--field", "env_var=STRIPE_KEY")
    r = store("update", "dev/stripe/billing", "--unset-field", "env_var", "--json")
    assert r.code == 0
    assert json.loads(r.out)["fields"] == {"api_key": "••••••••"}


def test_history_and_rollback(store: CLI) -> None:
    store("update", "dev/stripe/billing", "--stdin", input="second")
    hist = json.loads(store("history", "dev/stripe/billing", "--json").out)
    assert [(v["version"], v["current"]) for v in hist] == [(2, True), (1, False)]
    table = store("history", "dev/stripe/billing").out
    assert "VERSION" in table and "created" in table

    assert store("rollback", "dev/stripe/billing", "--to", "1", "--if-version", "1").code == 6
    r = store("rollback", "dev/stripe/billing", "--to", "1")
    assert r.code == 0
    assert "now version 3" in r.out
    assert store("get", "dev/stripe/billing").out == CANARY + "\n"
    assert store("rollback", "dev/stripe/billing", "--to", "9").code == 4
    assert store("rollback", "dev/stripe/billing").code == 2


def test_rm_needs_yes_without_a_terminal(store: CLI) -> None:
    r = store("rm", "dev/stripe/billing")
    assert r.code == 2
    assert "refusing to delete" in r.err
    assert "--yes" in r.err
    assert store("get", "dev/stripe/billing").code == 0

    assert store("rm", "--yes", "--if-version", "5", "dev/stripe/billing").code == 6
    r = store("rm", "--yes", "dev/stripe/billing")
    assert (r.code, r.out) == (0, "removed dev/stripe/billing\n")
    assert store("get", "dev/stripe/billing").code == 4
