"""`import`, `export` and `run`."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

from .conftest import CANARY, CLI

DOTENV = 'DATABASE_URL="postgres://u:p@db/app"\nAPI_TOKEN=tok-123 # comment\nEMPTY=\n'


def test_import_dotenv_then_list(store: CLI, tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("DATABASE_URL=postgres://u:p@db/app\nAPI_TOKEN=tok-123\n")
    r = store("import", str(path), "--env", "dev", "--service", "app")
    assert r.code == 0, r
    assert r.out.splitlines()[0] == "imported 2 variables into dev/app"
    assert "dev/app/database-url" in r.out and "dev/app/api-token" in r.out
    assert "tok-123" not in r.out + r.err
    assert store("get", "dev/app/api-token").out == "tok-123\n"
    again = store("import", str(path), "--env", "dev", "--service", "app")
    assert again.code == 6
    assert "--overwrite" in again.err
    r = store("import", str(path), "--env", "dev", "--service", "app", "--overwrite", "--json")
    assert [i["version"] for i in json.loads(r.out)] == [2, 2]


def test_import_malformed_dotenv_stores_nothing(cli: CLI, tmp_path: Path) -> None:
    assert cli("init").code == 0
    path = tmp_path / "bad.env"
    path.write_text(f"GOOD={CANARY}\nthis line is not an assignment\n")
    r = cli("import", str(path), "--env", "dev", "--service", "app")
    assert r.code == 2
    assert "bad.env, line 2" in r.err
    assert CANARY not in r.out + r.err
    assert json.loads(cli("list", "--json").out) == []


def test_import_json_from_stdin_and_bad_json(cli: CLI) -> None:
    assert cli("init").code == 0
    r = cli("import", "-", "--format", "json", "--service", "svc", input='{"A_KEY": "a"}')
    assert r.code == 0, r
    assert "into dev/svc" in r.out  # the default environment
    bad = cli("import", "-", "--format", "json", "--service", "svc", input='{"N": 5}')
    assert bad.code == 2
    assert "quote it" in bad.err
    assert cli("import", "/no/such/file.env", "--service", "svc").code == 2


def test_export_import_round_trip(cli: CLI, tmp_path: Path) -> None:
    assert cli("init").code == 0
    assert cli("import", "-", "--env", "dev", "--service", "app", input=DOTENV).code == 2
    text = DOTENV.replace("EMPTY=\n", 'MULTI="line1\\nline2 $HOME \\"q\\""\n')
    assert cli("import", "-", "--env", "dev", "--service", "app", input=text).code == 0
    exported = cli("export", "--env", "dev")
    assert exported.code == 0
    assert 'API_TOKEN="tok-123"' in exported.out

    assert cli("environments", "add", "copy").code == 0
    again = cli("import", "-", "--env", "copy", "--service", "app", input=exported.out)
    assert again.code == 0, again
    assert cli("export", "--env", "copy").out == exported.out

    as_json = cli("export", "--env", "dev", "--format", "json")
    values = json.loads(as_json.out)
    assert values["MULTI"] == 'line1\nline2 $HOME "q"'
    assert values["DATABASE_URL"] == "postgres://u:p@db/app"
    path = tmp_path / "out.json"
    path.write_text(as_json.out)
    assert cli("environments", "add", "copy2").code == 0
    assert cli("import", str(path), "--env", "copy2", "--service", "app").code == 0
    assert json.loads(cli("export", "--env", "copy2", "--format", "json").out) == values


def test_export_only_and_to_a_private_file(store: CLI, tmp_path: Path) -> None:
    assert store("add", "dev/db/main", "--kind", "secret", "--stdin", input="pw").code == 0
    only = store("export", "--env", "dev", "--only", "dev/db/*")
    assert only.out == 'MAIN="pw"\n'
    out = tmp_path / "secrets.env"
    r = store("export", "--env", "dev", "-o", str(out))
    assert r.code == 0
    assert r.out == ""
    assert "exported 2 variables" in r.err
    assert f'STRIPE_BILLING_API_KEY="{CANARY}"' in out.read_text()
    if os.name == "posix":
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
    refused = store("export", "--env", "dev", "-o", str(out))
    assert refused.code == 2
    assert "--force" in refused.err
    out.write_text("old")
    assert store("export", "--env", "dev", "-o", str(out), "--force").code == 0
    assert "MAIN" in out.read_text()
    empty = store("export", "--env", "prod")
    assert (empty.code, empty.out) == (0, "")
    assert "no variables" in empty.err
    assert store("export", "--only", "BAD PATTERN").code == 2


PY_ECHO = "import os, sys; print(os.environ.get(sys.argv[1], '<unset>'))"


def test_run_sets_the_variables(store: CLI) -> None:
    r = store.sh("run", "--", sys.executable, "-c", PY_ECHO, "STRIPE_BILLING_API_KEY")
    assert (r.code, r.out, r.err) == (0, CANARY + "\n", "")
    store.env["CREDWARDEN_ENV"] = "prod"
    r = store.sh("run", "--", sys.executable, "-c", PY_ECHO, "STRIPE_BILLING_API_KEY")
    assert r.out == "<unset>\n"
    r = store.sh("run", "--env", "dev", "--only", "dev/other/*", "--", sys.executable, "-c",
                 PY_ECHO, "STRIPE_BILLING_API_KEY")  # fmt: skip
    assert r.out == "<unset>\n"


def test_run_passes_the_exit_code_through(store: CLI) -> None:
    r = store.sh("run", "--", sys.executable, "-c", "import sys; sys.exit(7)")
    assert r.code == 7
    r = store.sh("run", "--", sys.executable, "-c", "import os; os.kill(os.getpid(), 15)")
    assert r.code == -15  # the child's signal, not a credwarden error


def test_run_errors(store: CLI) -> None:
    r = store.sh("run", "--", "credwarden-no-such-command-xyz")
    assert r.code == 127
    assert "command not found: credwarden-no-such-command-xyz" in r.err
    r = store.sh("run")
    assert r.code == 2
    assert "no command" in r.err
    assert store.sh("run", "--env", "nope", "--", "true").code == 2


def test_run_does_not_hand_over_the_master_key(store: CLI) -> None:
    key = (store.home / "master.key").read_text().strip()
    store.env["CREDWARDEN_MASTER_KEY"] = key
    r = store.sh("run", "--", sys.executable, "-c", PY_ECHO, "CREDWARDEN_MASTER_KEY")
    assert (r.code, r.out) == (0, "<unset>\n")
    r = store.sh("run", "--", sys.executable, "-c", PY_ECHO, "CREDWARDEN_HOME")
    assert r.out == f"{store.home}\n"
