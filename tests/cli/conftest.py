"""Running the real `credwarden` command: in-process through `main()` and as a subprocess.

Each test gets its own CREDWARDEN_HOME and none of the caller's CREDWARDEN_* settings.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from click.testing import CliRunner

CANARY = "cwCANARY0x5e3d9a7fDoNotLeak"
CREDWARDEN = Path(sys.executable).parent / "credwarden"


class Run(NamedTuple):
    code: int
    out: str
    err: str


class _Main:
    """Lets CliRunner call `credwarden.cli.main.main`, so errors map to exit codes as for users."""

    def main(self, args: Sequence[str], prog_name: str, **_: Any) -> Any:
        from credwarden.cli.main import main

        return main(list(args))


def clean_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The outer environment without any CREDWARDEN_* variable, plus this test's home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDWARDEN_")}
    env["CREDWARDEN_HOME"] = str(home)
    env.update(extra or {})
    return env


class CLI:
    """`cli("add", ...)` in-process; `cli.sh(...)` through the installed console script."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env: dict[str, str] = {}

    def __call__(self, *args: str, input: str | None = None) -> Run:
        overrides: dict[str, str | None] = {
            k: None for k in os.environ if k.startswith("CREDWARDEN_")
        }
        overrides.update({"CREDWARDEN_HOME": str(self.home), **self.env})
        result = CliRunner(catch_exceptions=False).invoke(
            _Main(),  # type: ignore[arg-type]
            list(args),
            input=input,
            env=overrides,
            prog_name="credwarden",
        )
        return Run(result.exit_code, result.stdout, result.stderr)

    def sh(self, *args: str, input: str | None = None, timeout: float = 30) -> Run:
        proc = subprocess.run(
            [str(CREDWARDEN), *args],
            input=input,
            capture_output=True,
            text=True,
            env=clean_env(self.home, self.env),
            timeout=timeout,
            check=False,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    """A CLI on a fresh, not yet initialised home."""
    return CLI(tmp_path / "cwhome")


@pytest.fixture
def store(cli: CLI) -> CLI:
    """A CLI on an initialised store holding dev/stripe/billing (api_key = CANARY)."""
    assert cli("init").code == 0
    r = cli("add", "dev/stripe/billing", "--kind", "api_key", "--stdin", input=CANARY + "\n")
    assert r.code == 0, r
    return cli
