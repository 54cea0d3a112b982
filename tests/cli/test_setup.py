"""`init`, `environments` and `key rotate`."""

from __future__ import annotations

import json
import os
import stat

from .conftest import CANARY, CLI


def test_init_creates_the_store_once_and_says_so(cli: CLI) -> None:
    first = cli("init")
    assert first.code == 0
    assert "initialised" in first.out
    assert str(cli.home) in first.out
    assert "key file" in first.out
    assert "back up" in first.err.lower()
    key = cli.home / "master.key"
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    before = key.read_bytes()

    again = cli("init")
    assert again.code == 0
    assert "already initialised" in again.out
    assert key.read_bytes() == before


def test_init_json(cli: CLI) -> None:
    r = cli("init", "--json")
    assert r.code == 0
    report = json.loads(r.out)
    assert report["created"] is True
    assert report["home"] == str(cli.home)
    assert report["key_source"].startswith("key file")
    assert json.loads(cli("init", "--json").out)["created"] is False


def test_init_with_a_passphrase_from_the_environment(cli: CLI) -> None:
    cli.env["CREDWARDEN_PASSPHRASE"] = "correct horse battery staple"
    r = cli("init", "--passphrase")
    assert r.code == 0, r
    assert "passphrase" in r.out
    assert not (cli.home / "master.key").exists()
    cli.env["CREDWARDEN_MASTER_KEY_SOURCE"] = "passphrase"
    assert cli("add", "dev/a/b", "--kind", "secret", "--stdin", input="v").code == 0
    assert cli("get", "dev/a/b").out == "v\n"


def test_passphrase_prompt_refused_without_a_terminal(cli: CLI) -> None:
    r = cli("init", "--passphrase")
    assert r.code == 2
    assert "not a terminal" in r.err


def test_missing_key_file_is_exit_3_naming_the_source(store: CLI) -> None:
    (store.home / "master.key").unlink()
    r = store.sh("list")
    assert r.code == 3
    assert "error:" in r.err
    assert str(store.home / "master.key") in r.err
    assert "hint:" in r.err


def test_commands_before_init_say_how_to_start(cli: CLI) -> None:
    r = cli("list")
    assert r.code != 0
    assert "credwarden init" in r.err


def test_environments_list_and_add(store: CLI) -> None:
    assert store("environments").out.split() == ["dev", "staging", "prod"]
    assert json.loads(store("environments", "list", "--json").out) == ["dev", "staging", "prod"]
    r = store("environments", "add", "qa")
    assert r.code == 0
    assert "qa" in r.out
    assert store("environments", "list").out.split() == ["dev", "staging", "prod", "qa"]
    assert store("environments", "add", "qa").code == 6
    assert store("environments", "add", "Not Valid").code == 2
    assert store("add", "qa/x/y", "--kind", "secret", "--stdin", input="v").code == 0


def test_unknown_environment_is_a_usage_error(store: CLI) -> None:
    r = store("add", "nope/x/y", "--kind", "secret", "--stdin", input="v")
    assert r.code == 2
    assert "environments add nope" in r.err


def test_key_rotate_then_get_still_works(store: CLI) -> None:
    assert store("add", "prod/db/main", "--kind", "secret", "--stdin", input="pw").code == 0
    r = store("key", "rotate")
    assert r.code == 0, r
    assert "term 2" in r.out
    assert "2 data keys" in r.out
    assert json.loads(store("key", "rotate", "--json").out) == {"term": 3, "rewrapped": 2}
    # A fresh process, so nothing is cached from before the rotation.
    got = store.sh("get", "dev/stripe/billing")
    assert (got.code, got.out) == (0, CANARY + "\n")
    assert store("get", "prod/db/main").out == "pw\n"
