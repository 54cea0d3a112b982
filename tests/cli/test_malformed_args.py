"""Every command, every parameter, malformed values: oversized numbers, bad dates and
durations, wrong types, empty strings, NUL bytes, huge strings, and directories, FIFOs and
missing paths where a file belongs. Each run ends with one clean error (usage: exit 2, or the
documented code) and no traceback, and a failed run leaves the store as it was."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from credwarden.cli.app import cli as root

from .conftest import CLI

NUMBERS = ("99999999999999999999999", "-1", "1e400", "nan", "0x10")
TIMES = ("+99999999999d", "99999999999d", "3000000d", "+3000000d", "0001-13-45", "+0d")
TEXTS = ("", "\x00", "x" * 100_000, "é" * 50_000, "../../..", "-")
DOCUMENTED = {1, 2, 3, 4, 5, 6, 7, 8}
RUN = {126, 127}  # `run`: COMMAND cannot be run / was not found, as a shell says

# Values for the other required parameters: each makes the command fail harmlessly should the
# malformed one be accepted (a credential, principal or provider that does not exist).
FILL = {
    "address": "dev/none/x",
    "ref": "dev/none/x",
    "kind_name": "api_key",
    "name": "nobody-here",
    "env": "nowhere",
    "principal_name": "nobody-here",
    "pattern": "dev/none/*",
    "token_id": "000000000000",
    "slug": "nosuch",
    "url": "https://id.invalid/.well-known/openid-configuration",
    "provider": "nosuch",
    "client": "dev/none/app",
    "to_version": "1",
    "file": "/nonexistent/credwarden-test.env",
    "service": "app",
    "command": "/nonexistent/credwarden-test-command",
}
SKIP = {
    ("serve", "host"),  # a host that binds would serve: bad ports and workers are tried
    ("serve", "public_url"),
    ("serve", "trusted_proxies"),
    ("serve", "log_level"),
}


def _commands() -> Iterator[tuple[list[str], click.Command]]:
    ctx = click.Context(root)

    def walk(cmd: click.Command, path: list[str]) -> Iterator[tuple[list[str], click.Command]]:
        if isinstance(cmd, click.Group):
            if any(not getattr(p, "is_flag", False) for p in cmd.params):
                yield path, cmd  # a group with options of its own (audit)
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                assert sub is not None
                yield from walk(sub, [*path, name])
        else:
            yield path, cmd

    yield from walk(root, [])


def _values(p: click.Parameter, paths: dict[str, str]) -> tuple[str, ...]:
    kind = p.type.name
    if kind in ("integer range", "integer", "float range", "float"):
        return NUMBERS
    if kind == "file" or p.name in ("from_file", "ca_bundle", "file", "output"):
        return (paths["dir"], paths["fifo"], paths["missing"], "/dev/zero", "")
    if kind == "choice":
        return ("", "nonsense")
    return TEXTS + TIMES


def _cases(paths: dict[str, str]) -> Iterator[tuple[list[str], str]]:
    for path, cmd in _commands():
        for target in cmd.params:
            if getattr(target, "is_flag", False) or (path[0], target.name) in SKIP:
                continue
            if isinstance(cmd, click.Group) and isinstance(target, click.Argument):
                continue
            for value in _values(target, paths):
                yield _argv(path, cmd, target, value), f"{' '.join(path)} {target.name}"


def _argv(path: list[str], cmd: click.Command, target: click.Parameter, value: str) -> list[str]:
    options: list[str] = []
    arguments: list[str] = []
    for p in cmd.params:
        if p is target:
            v = value
        elif p.required or (isinstance(p, click.Argument) and p.name in FILL):
            v = FILL.get(p.name or "", "x")
        else:
            continue
        if isinstance(p, click.Option):
            options += [p.opts[0], v]
        else:
            arguments.append(v)
    if "command" in {p.name for p in cmd.params}:  # run: never reach a program that runs
        if target.name != "env":
            options += ["--env", "nowhere"]
        return [*path, *options, "--", *arguments]
    return [*path, *options, "--", *arguments] if arguments else [*path, *options]


def _snapshot(home: Path) -> list[tuple[object, ...]]:
    import sqlite3

    with sqlite3.connect(home / "credwarden.db") as c:
        return c.execute(
            "SELECT ns, key, rev, body FROM records"
            " WHERE ns NOT IN ('usage', 'meta') OR key IN ('store', 'access')"
            " ORDER BY ns, key"
        ).fetchall()


@pytest.fixture
def paths(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "a-dir").mkdir()
    os.mkfifo(tmp_path / "a-fifo")
    return {
        "dir": str(tmp_path / "a-dir"),
        "fifo": str(tmp_path / "a-fifo"),
        "missing": str(tmp_path / "missing" / "file"),
    }


def test_every_command_refuses_malformed_arguments_cleanly(
    store: CLI, paths: dict[str, str]
) -> None:
    assert store("principal", "add", "etl").code == 0
    before = _snapshot(store.home)
    bad: list[str] = []
    runs = 0
    for argv, what in _cases(paths):
        runs += 1
        r = store(*argv)  # in-process: an uncaught exception fails the test right here
        shown = " ".join(a if len(a) < 40 else a[:20] + "..." for a in argv)
        if "Traceback" in r.err or "internal error" in r.err:
            bad.append(f"{shown}: {r.err[-300:]!r}")
        elif r.code not in DOCUMENTED and r.code != 0 and not (argv[0] == "run" and r.code in RUN):
            bad.append(f"{shown}: exit {r.code}")
        elif r.code != 0 and _snapshot(store.home) != before:
            bad.append(f"{shown}: exit {r.code} but the store changed")
        elif r.code != 0 and not r.err.strip():
            bad.append(f"{shown}: exit {r.code} without a message")
        if r.code == 0 and _snapshot(store.home) != before:
            before = _snapshot(store.home)  # an accepted value (e.g. --owner ''): fine
            print(f"accepted: {what} = {argv[-1][:20]!r}")
    print(f"{runs} malformed command lines")
    assert runs > 500
    assert not bad, "\n".join(bad[:20])


@pytest.mark.parametrize(
    "argv",
    [
        ("add", "dev/a/new", "--kind", "api_key", "--stdin", "--expires", "+99999999999d"),
        ("add", "dev/a/new", "--kind", "api_key", "--stdin", "--expires", "+3000000d"),
        ("update", "dev/stripe/billing", "--expires", "+99999999999d"),
        ("update", "dev/stripe/billing", "--rotate-every", "3000000d"),
        ("principal", "token", "etl", "--expires", "99999999999d"),
        ("audit", "--since", "3000000d"),
        ("report", "expiring", "--within", "99999999999d"),
    ],
)
def test_out_of_range_durations_are_usage_errors_naming_the_range(
    store: CLI, argv: tuple[str, ...]
) -> None:
    assert store("principal", "add", "etl").code == 0
    before = _snapshot(store.home)
    r = store(*argv, input="v\n")
    assert r.code == 2, r.err
    assert "out of range" in r.err and "36600d" in r.err
    assert _snapshot(store.home) == before


def test_report_unused_days_beyond_the_range(store: CLI) -> None:
    r = store("report", "unused", "--days", "99999999999")
    assert r.code == 2 and "at most 36600 days" in r.err


def test_a_home_that_is_a_file_is_a_clear_error(cli: CLI) -> None:
    cli.home.parent.mkdir(parents=True, exist_ok=True)
    cli.home.write_text("not a folder")
    for argv in (("init",), ("list",), ("get", "dev/a/b")):
        r = cli(*argv)
        assert r.code == 2, (argv, r.err)
        assert r.err.startswith(f"error: CREDWARDEN_HOME {cli.home} is not a directory")


def test_a_key_file_that_is_a_fifo_or_a_directory_does_not_hang(store: CLI) -> None:
    key = store.home / "master.key"
    key.unlink()
    os.mkfifo(key)
    r = store.sh("list", timeout=20)  # a blocking read would hit the timeout
    assert r.code == 3 and "is not a regular file" in r.err, r.err
    key.unlink()
    key.mkdir()
    r = store("list")
    assert r.code == 3 and "is not a regular file" in r.err


def test_a_database_that_is_not_a_regular_file(store: CLI) -> None:
    db = store.home / "credwarden.db"
    for suffix in ("-wal", "-shm"):
        (store.home / f"credwarden.db{suffix}").unlink(missing_ok=True)
    db.unlink()
    os.mkfifo(db)
    r = store("list")
    assert r.code == 1 and "is not a regular file" in r.err
