"""The access commands: principals, tokens, grants, protected environments, `report permissions`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from credwarden import Warden
from credwarden.access.policy import Principal
from credwarden.errors import PermissionDenied

from .conftest import CLI

TOKEN_RE = re.compile(r"cwt_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")


@contextmanager
def facade(cli: CLI) -> Iterator[Warden]:
    """The store the CLI uses, opened directly (to set up state or to act as a principal)."""
    w = Warden.open(home=cli.home)
    try:
        yield w
    finally:
        w.close()


def ok(r: object) -> None:
    assert getattr(r, "code", None) == 0, r


# -- principals ----------------------------------------------------------------------------------


def test_principal_add_list_show_rm(store: CLI) -> None:
    r = store(
        "principal", "add", "nightly", "--type", "workflow", "--owner", "billing-team",
        "--description", "invoices run",
    )  # fmt: skip
    ok(r)
    assert "added principal nightly (workflow)" in r.out
    ok(store("principal", "add", "alice", "--type", "user"))

    listed = json.loads(store("principal", "list", "--json").out)
    assert [p["name"] for p in listed] == ["alice", "nightly"]
    assert listed[1]["owner"] == "billing-team"
    table = store("principal", "list").out
    assert "nightly" in table and "workflow" in table and "billing-team" in table

    ok(store("grant", "nightly", "dev/stripe/*", "--actions", "use"))
    ok(store("principal", "token", "nightly"))
    shown = json.loads(store("principal", "show", "nightly", "--json").out)
    assert shown["type"] == "workflow"
    assert [g["pattern"] for g in shown["grants"]] == ["dev/stripe/*"]
    assert len(shown["tokens"]) == 1
    assert not {"hash", "salt", "token"} & set(shown["tokens"][0])
    text = store("principal", "show", "nightly").out
    assert "dev/stripe/*" in text and shown["tokens"][0]["id"] in text

    refused = store("principal", "rm", "nightly")
    assert refused.code == 2
    assert "--yes" in refused.err
    r = store("principal", "rm", "nightly", "--yes", "--json")
    ok(r)
    assert json.loads(r.out) == {"principal": "nightly", "removed": True, "grants": 1, "tokens": 1}
    assert [p["name"] for p in json.loads(store("principal", "list", "--json").out)] == ["alice"]
    assert store("principal", "show", "nightly").code == 4
    assert store("principal", "rm", "nightly", "--yes").code == 4


def test_principal_add_refuses_duplicates_bad_names_and_types(store: CLI) -> None:
    ok(store("principal", "add", "bot", "--type", "service"))
    assert store("principal", "add", "bot", "--type", "service").code == 6
    bad = store("principal", "add", "Not Valid", "--type", "user")
    assert bad.code == 2
    assert "invalid principal name" in bad.err
    assert store("principal", "add", "x", "--type", "robot").code == 2
    assert store("principal", "add", "y", "--pattern", "prod/*").code == 2  # --pattern needs --role


def test_principal_add_with_a_role(store: CLI) -> None:
    r = store(
        "principal", "add", "ci", "--type", "workflow", "--role", "runner",
        "--pattern", "*/stripe/*", "--json",
    )  # fmt: skip
    ok(r)
    added = json.loads(r.out)
    assert added["name"] == "ci"
    assert [(g["pattern"], g["role"]) for g in added["grants"]] == [("*/stripe/*", "runner")]
    assert "does not reach protected environments (prod)" in r.err


def test_admin_role_on_everything_names_protected_environments(store: CLI) -> None:
    r = store("principal", "add", "ops", "--type", "user", "--role", "admin")
    ok(r)
    patterns = [g["pattern"] for g in json.loads(store("grants", "--json").out)]
    assert patterns == ["*/*/*", "prod/*/*"]
    assert "does not reach" not in r.err


# -- API tokens ----------------------------------------------------------------------------------


def test_token_is_printed_alone_on_the_last_line_and_stored_hashed(store: CLI) -> None:
    ok(store("principal", "add", "nightly", "--type", "workflow"))
    r = store("principal", "token", "nightly", "--expires", "90d", "--description", "gh actions")
    ok(r)
    last = r.out.splitlines()[-1]
    assert TOKEN_RE.fullmatch(last), r.out
    assert "shown once" in r.err and "hashed" in r.err and "expires" in r.err
    assert last not in r.err

    secret = last.rsplit("_", 1)[1]
    for path in Path(store.home).rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert last.encode() not in data, path
            assert secret.encode() not in data, path

    tokens = json.loads(store("principal", "tokens", "nightly", "--json").out)
    assert len(tokens) == 1
    t = tokens[0]
    assert t["id"] == last[4:16]
    assert t["expires_at"] and t["status"] == "active" and t["description"] == "gh actions"
    assert not {"hash", "salt", "token"} & set(t)
    assert secret not in store("principal", "tokens").out

    with facade(store) as w:
        assert w.authenticate(last).name == "nightly"


def test_token_json_and_revocation(store: CLI) -> None:
    ok(store("principal", "add", "bot", "--type", "service"))
    r = store("principal", "token", "bot", "--json")
    ok(r)
    issued = json.loads(r.out)
    assert TOKEN_RE.fullmatch(issued["token"])
    assert issued["id"] == issued["token"][4:16]
    assert issued["expires_at"] is None

    r = store("principal", "revoke-token", issued["id"], "--json")
    ok(r)
    assert json.loads(r.out)["status"] == "revoked"
    listed = json.loads(store("principal", "tokens", "--json").out)
    assert [(t["id"], t["status"]) for t in listed] == [(issued["id"], "revoked")]
    assert "revoked" in store("principal", "tokens", "bot").out
    with facade(store) as w, pytest.raises(PermissionDenied):
        w.authenticate(issued["token"])

    assert store("principal", "revoke-token", "0123456789ab").code == 4
    assert store("principal", "token", "nobody").code == 4
    assert store("principal", "tokens", "nobody").code == 4
    assert store("principal", "token", "bot", "--expires", "soon").code == 2


def test_token_through_the_console_script(store: CLI) -> None:
    ok(store("principal", "add", "bot", "--type", "workflow"))
    r = store.sh("principal", "token", "bot", "--expires", "1d")
    ok(r)
    assert TOKEN_RE.fullmatch(r.out.strip())
    assert r.out.strip().splitlines()[-1] == r.out.strip()


# -- grants --------------------------------------------------------------------------------------


def test_grant_list_and_revoke(store: CLI) -> None:
    ok(store("principal", "add", "bot", "--type", "workflow"))
    r = store("grant", "bot", "dev/stripe", "--actions", "read,use", "--json")
    ok(r)
    g = json.loads(r.out)
    assert (g["principal"], g["pattern"], g["actions"]) == ("bot", "dev/stripe/*", ["read", "use"])
    assert "note" not in r.err
    ok(store("grant", "bot", "dev/stripe/*", "--actions", "rotate"))  # merges
    ok(store("grant", "bot", "staging/db/main", "--role", "viewer"))

    listed = json.loads(store("grants", "--principal", "bot", "--json").out)
    assert [(x["pattern"], x["actions"]) for x in listed] == [
        ("dev/stripe/*", ["read", "rotate", "use"]),
        ("staging/db/main", ["describe"]),
    ]
    assert "staging/db/main" in store("grants").out
    assert store("grants", "--principal", "nobody").code == 4

    r = store("revoke-grant", "bot", "dev/stripe/*", "--actions", "read", "--json")
    ok(r)
    left = json.loads(r.out)
    assert left["removed"] is False and left["grant"]["actions"] == ["rotate", "use"]
    r = store("revoke-grant", "bot", "dev/stripe", "--json")
    ok(r)
    assert json.loads(r.out) == {
        "principal": "bot",
        "pattern": "dev/stripe/*",
        "removed": True,
        "grant": None,
    }
    remaining = [x["pattern"] for x in json.loads(store("grants", "--json").out)]
    assert remaining == ["staging/db/main"]
    assert store("revoke-grant", "bot", "dev/stripe/*").code == 4


def test_grant_errors(store: CLI) -> None:
    ok(store("principal", "add", "bot", "--type", "workflow"))
    bad = store("grant", "bot", "dev/*", "--actions", "read,frobnicate")
    assert bad.code == 2
    assert "frobnicate" in bad.err
    assert store("grant", "nobody", "dev/*", "--actions", "read").code == 4
    assert store("grant", "bot", "dev/*").code == 2
    assert store("grant", "bot", "dev/*", "--actions", "read", "--role", "viewer").code == 2
    assert store("grant", "bot", "dev/*", "--role", "owner").code == 2
    assert store("grant", "bot", "Dev/../x", "--actions", "read").code == 2
    assert json.loads(store("grants", "--json").out) == []


def test_wildcard_environment_note(store: CLI) -> None:
    ok(store("principal", "add", "bot", "--type", "workflow"))
    r = store("grant", "bot", "*/stripe/*", "--actions", "use")
    ok(r)
    assert "note: '*/stripe/*' does not reach protected environments (prod)" in r.err
    assert "prod/stripe/*" in r.err
    assert "note" not in r.out
    ok(store("grant", "bot", "prod/stripe/*", "--actions", "use"))
    again = store("grant", "bot", "*/stripe/*", "--actions", "describe")
    assert "note" not in again.err  # prod is now named explicitly


# -- protected environments ----------------------------------------------------------------------


def test_protect_and_unprotect(store: CLI) -> None:
    assert store("environments").out.split() == ["dev", "staging", "prod"]
    assert "prod" in store("environments").err
    assert json.loads(store("environments", "--protected", "--json").out) == ["prod"]

    ok(store("principal", "add", "bot", "--type", "workflow"))
    ok(store("grant", "bot", "*/stripe/*", "--actions", "read"))
    ok(store("add", "staging/stripe/billing", "--kind", "api_key", "--stdin", input="v\n"))
    bot = Principal("bot", "workflow")
    with facade(store) as w, w.acting_as(bot):
        assert w.get("staging/stripe/billing").reveal() == "v"

    r = store("environments", "protect", "staging")
    ok(r)
    assert "protected staging" in r.out
    assert "bot */stripe/*" in r.err
    assert json.loads(store("environments", "list", "--protected", "--json").out) == [
        "staging",
        "prod",
    ]
    with facade(store) as w, w.acting_as(bot), pytest.raises(PermissionDenied):
        w.get("staging/stripe/billing")

    r = store("environments", "unprotect", "staging", "--json")
    ok(r)
    assert json.loads(r.out) == ["prod"]
    with facade(store) as w, w.acting_as(bot):
        assert w.get("staging/stripe/billing").reveal() == "v"

    assert store("environments", "protect", "nowhere").code == 4
    ok(store("environments", "add", "qa"))  # the group's other subcommands still work
    assert store("environments").out.split() == ["dev", "staging", "prod", "qa"]


# -- report permissions --------------------------------------------------------------------------


def test_report_permissions_flags(store: CLI) -> None:
    ok(store("principal", "add", "bot", "--type", "workflow"))
    ok(store("principal", "add", "ops", "--type", "user"))
    ok(store("grant", "bot", "dev/stripe/*", "--actions", "read"))
    ok(store("grant", "bot", "*/db/*", "--actions", "read"))
    ok(store("grant", "bot", "dev/*/*", "--actions", "describe"))
    ok(store("grant", "ops", "prod/*/*", "--actions", "admin"))
    with facade(store) as w, w.acting_as(Principal("bot", "workflow")):
        assert w.get("dev/stripe/billing").reveal()

    r = store("report", "permissions", "--json")
    ok(r)
    rows = {(x["principal"], x["pattern"]): x for x in json.loads(r.out)}
    used = rows[("bot", "dev/stripe/*")]
    assert used["flags"] == [] and used["last_used_at"]
    assert rows[("bot", "*/db/*")]["flags"] == ["unused", "broad"]
    # describe on a wildcard service is not broad; a read is not a use of a describe grant.
    assert rows[("bot", "dev/*/*")]["flags"] == ["unused"]
    assert rows[("ops", "prod/*/*")]["flags"] == ["unused", "broad", "admin"]
    assert rows[("ops", "prod/*/*")]["last_used_at"] is None

    flagged = json.loads(store("report", "permissions", "--flagged", "--json").out)
    assert {x["pattern"] for x in flagged} == {"*/db/*", "dev/*/*", "prod/*/*"}
    only_ops = json.loads(store("report", "permissions", "--principal", "ops", "--json").out)
    assert [x["principal"] for x in only_ops] == ["ops"]

    text = store("report", "permissions").out
    assert "unused,broad,admin" in text and "never" in text


def test_help_lists_the_access_commands(cli: CLI) -> None:
    top = cli("--help").out
    for name in ("principal", "grant", "grants", "revoke-grant"):
        assert re.search(rf"^\s+{re.escape(name)}\s", top, re.M), name
    assert "permissions" in cli("report", "--help").out
    assert "protect" in cli("environments", "--help").out
    for sub in ("add", "list", "show", "rm", "token", "tokens", "revoke-token"):
        assert cli("principal", sub, "--help").code == 0
