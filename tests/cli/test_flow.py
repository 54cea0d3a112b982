"""The README's first five commands through the installed script, and what never leaks."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from credwarden.cli.app import COMMANDS

from .conftest import CANARY, CLI


def test_readme_five_commands(cli: CLI) -> None:
    r = cli.sh("init")
    assert r.code == 0, r.err
    r = cli.sh("add", "prod/stripe/billing", "--kind", "api_key", "--stdin", input=CANARY)
    assert r.code == 0, r.err
    assert r.out == "added prod/stripe/billing (api_key, version 1)\n"
    r = cli.sh("get", "prod/stripe/billing")
    assert (r.code, r.out, r.err) == (0, CANARY + "\n", "")
    code = "import os; print(os.environ['STRIPE_BILLING_API_KEY'])"
    r = cli.sh("run", "--env", "prod", "--", sys.executable, "-c", code)
    assert (r.code, r.out) == (0, CANARY + "\n")
    r = cli.sh("audit", "--json")
    assert r.code == 0
    events = json.loads(r.out)
    reads = [e for e in events if e["action"] == "read"]
    assert len(reads) == 2  # get, then run
    assert {e["address"] for e in reads} == {"prod/stripe/billing"}
    assert reads[1]["detail"]["via"] == "env"
    assert CANARY not in r.out


# Commands that must never show the value (stdout or stderr).
QUIET = [
    ["show", "dev/stripe/billing"],
    ["show", "dev/stripe/billing", "--json"],
    ["list"],
    ["list", "--json"],
    ["history", "dev/stripe/billing"],
    ["history", "dev/stripe/billing", "--json"],
    ["audit"],
    ["audit", "--json"],
    ["audit", "verify", "--json"],
    ["update", "dev/stripe/billing", "--owner", "me", "--json"],
    ["rollback", "dev/stripe/billing", "--to", "1", "--json"],
    ["environments", "--json"],
    ["key", "rotate", "--json"],
    ["init", "--json"],
]
HELP = [
    [],
    *([c] for c in COMMANDS),
    ["audit", "verify"],
    ["key", "rotate"],
    ["environments", "add"],
    ["environments", "list"],
]


def test_the_canary_never_leaks(store: CLI, tmp_path: Path) -> None:
    store("update", "dev/stripe/billing", "--stdin", input="v2\n")
    outputs = [store(*args) for args in QUIET]
    outputs += [store(*args, "--help") for args in HELP]
    outputs.append(store("add", "dev/x/y", "--kind", "secret", "--field", f"value={CANARY}"))
    outputs.append(store("add", "dev/x/y", "--kind", "secret", "--stdin", input=CANARY))
    (tmp_path / "c.env").write_text(f"A={CANARY}\nB='{CANARY}\n")
    outputs.append(store("import", str(tmp_path / "c.env"), "--service", "c"))
    for r in outputs:
        assert CANARY not in r.out + r.err
    assert all(r.code in (0, 2, 6) for r in outputs), [
        r for r in outputs if r.code not in (0, 2, 6)
    ]
    # The commands that print values on purpose keep them off stderr.
    for args in (["get", "dev/stripe/billing"], ["export"]):
        r = store(*args)
        assert CANARY in r.out
        assert CANARY not in r.err
    r = store.sh("run", "--", sys.executable, "-c", "pass")
    assert CANARY not in r.out + r.err
    db = (store.home / "credwarden.db").read_bytes()
    assert CANARY.encode() not in db


@pytest.mark.parametrize(
    "args",
    [["list", "--json"], ["show", "dev/stripe/billing", "--json"], ["run", "--", "true"]],
)
def test_commands_without_tables_do_not_import_rich(store: CLI, args: list[str]) -> None:
    probe = (
        "import os, sys\n"
        "from credwarden.cli.main import main\n"
        "def report(*a):\n"
        "    print('rich' in sys.modules); sys.stdout.flush(); os._exit(0)\n"
        "os.execve = report\n"
        "try:\n"
        f"    main({args!r})\n"
        "finally:\n"
        "    print('rich' in sys.modules)\n"
    )
    import subprocess

    from .conftest import clean_env

    proc = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=clean_env(store.home),
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "False"
