"""One audit event per operation (DESIGN.md, invariant 2), pinned for every CLI command.

Each command line is run on a store holding an api_key (dev/stripe/billing), a local OAuth
connection and its client, and a principal; the events it adds are counted. Compound
commands are listed with the events they leave and why.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import CANARY, CLI
from .test_oauth_cli import FakeApi, add_client, add_connection, add_providers
from .test_providers_cli import LocalServer, serving

HEAD = 1 << 62

# (command line, stdin, the actions of the events it leaves, in order)
CASES: list[tuple[tuple[str, ...], str | None, list[str]]] = [
    (("get", "dev/stripe/billing"), None, ["read"]),
    (("get", "dev/stripe/billing", "--json"), None, ["read"]),
    (("show", "dev/stripe/billing"), None, ["describe"]),
    (("show", "dev/stripe/billing", "--json"), None, ["describe"]),
    (("list",), None, ["list"]),
    (("history", "dev/stripe/billing"), None, ["history"]),
    (("headers", "dev/stripe/billing"), None, ["read"]),
    (("update", "dev/stripe/billing", "--stdin"), CANARY + "-2\n", ["write"]),
    (("update", "dev/stripe/billing", "--owner", "ops"), None, ["write"]),
    (("update", "dev/stripe/billing", "--field", "api_key=k3"), None, ["write"]),
    (("rollback", "dev/local/key", "--to", "1"), None, ["write"]),
    (("add", "dev/app/new", "--kind", "api_key", "--stdin"), "v\n", ["write"]),
    (("rm", "dev/stripe/billing", "--yes"), None, ["delete"]),
    (("test", "dev/local/key"), None, ["test"]),
    (("test", "dev/local/conn"), None, ["test"]),
    (("token", "dev/local/conn"), None, ["use"]),
    # Environment-wide: one event per credential (each address's trail shows its own read or
    # write), committed together.
    (("export", "--env", "dev"), None, ["read"] * 4),
    (("run", "--env", "dev", "--", "true"), None, ["read"] * 4),
    (("import", "{env_file}", "--env", "dev", "--service", "imp"), None, ["write"] * 2),
    (("audit", "--limit", "3"), None, ["audit.read"]),
    (("audit", "verify"), None, ["audit.verify"]),
    (("environments", "add", "qa"), None, ["admin"]),
    (("principal", "add", "etl2"), None, ["principal.add"]),
    (("principal", "token", "etl"), None, ["token.issue"]),
    (("principal", "list"), None, ["principal.list"]),
    (("grant", "etl", "dev/*", "--actions", "read"), None, ["grant.add"]),
    # A wildcard environment: the grant, then the two look-ups behind the note that it does
    # not reach protected environments (prod) the principal holds no grant on.
    (("grant", "etl", "*/app/*", "--actions", "read"), None, ["grant.add", "list", "grant.list"]),
    (("grants",), None, ["grant.list"]),
    (("report", "expiring"), None, ["report"]),
    (("report", "unused"), None, ["report"]),
    (("report", "rotation"), None, ["report"]),
    (("report", "permissions"), None, ["review"]),
    # Compound: a new KEK term is committed first (so nothing is wrapped under a term that
    # might be lost), then every data key is re-wrapped and that is recorded once done.
    (("key", "rotate"), None, ["key.rotate", "key.rewrap"]),
    # No store operation at all: the catalog is files.
    (("providers", "list"), None, []),
]


def _events(home: Path) -> list[str]:
    with sqlite3.connect(home / "credwarden.db") as c:
        rows = c.execute("SELECT body FROM audit_events WHERE seq < ? ORDER BY seq", (HEAD,))
        import json

        return [json.loads(body)["action"] for (body,) in rows]


@pytest.fixture
def seeded(store: CLI, tmp_path: Path) -> Iterator[tuple[CLI, Path]]:
    fake = FakeApi()
    with serving(fake) as server:
        assert isinstance(server, LocalServer)
        add_providers(store.home, server.base)
        add_client(store)
        add_connection(store, "dev/local/conn", "local")
        r = store("add", "dev/local/key", "--kind", "api_key", "--provider", "local", "--stdin",
                  input=CANARY + "\n")  # fmt: skip
        assert r.code == 0, r.err
        assert store("update", "dev/local/key", "--stdin", input=CANARY + "\n").code == 0
        assert store("principal", "add", "etl").code == 0
        env_file = tmp_path / "vars.env"
        env_file.write_text("ONE=1\nTWO=2\n")
        yield store, env_file


@pytest.mark.parametrize(("argv", "stdin", "expected"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_each_command_leaves_the_events_it_should(
    seeded: tuple[CLI, Path], argv: tuple[str, ...], stdin: str | None, expected: list[str]
) -> None:
    cli, env_file = seeded
    argv = tuple(a.replace("{env_file}", str(env_file)) for a in argv)
    before = len(_events(cli.home))
    run = cli.sh if argv[0] == "run" else cli  # `run` execs COMMAND: not in this process
    r = run(*argv, input=stdin)
    assert r.code == 0, r.err
    assert _events(cli.home)[before:] == expected
