"""The public surface and the read path's import budget."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import credwarden

HEAVY = (
    "click",
    "rich",
    "psycopg",
    "httpx",
    "pydantic",
    "sqlalchemy",
    "fastapi",
    "argon2",
    "platformdirs",
    "dataclasses",
    "pathlib",
)


def test_all_is_sorted_and_importable() -> None:
    assert credwarden.__all__ == sorted(credwarden.__all__)
    for name in credwarden.__all__:
        assert hasattr(credwarden, name)


def test_cli_get_imports_nothing_heavy(tmp_path: Path) -> None:
    """`credwarden get` must start fast: no CLI framework, ORM, HTTP client or pydantic."""
    env = {**os.environ, "CREDWARDEN_HOME": str(tmp_path / "home")}
    setup = (
        "from credwarden import Warden\n"
        "w, _ = Warden.init()\n"
        "w.add('dev/app/key', 'api_key', {'api_key': 'k123'})\n"
        "w.close()\n"
    )
    subprocess.run([sys.executable, "-c", setup], env=env, check=True)
    probe = (
        "import sys, json, io, contextlib\n"
        "from credwarden.cli.main import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    rc = main(['get', 'dev/app/key'])\n"
        "print(json.dumps({'rc': rc, 'out': out.getvalue(), 'modules': sorted(sys.modules)}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], env=env, check=True, capture_output=True, text=True
    )
    result = json.loads(proc.stdout)
    assert result["rc"] == 0
    assert result["out"] == "k123\n"
    loaded = {m.split(".")[0] for m in result["modules"]}
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
