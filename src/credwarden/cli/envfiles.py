"""Environment variables in and out: `import`, `export`, and `run -- COMMAND`.

`run` stays light (no Rich): it reads the variables, closes the store and then
replaces itself with the command, so exit codes and signals pass straight through.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, NoReturn

import click

from .context import open_warden

if TYPE_CHECKING:
    from ..facade import Facade
    from ..secret import Secret

_FORMATS = ("dotenv", "json")
# What unlocks the whole store stays with credwarden, not with the command it runs.
# Never handed to the child: keys and the API token would widen what the workflow can reach.
_WITHHELD = ("CREDWARDEN_MASTER_KEY", "CREDWARDEN_PASSPHRASE", "CREDWARDEN_TOKEN")


MAX_IMPORT = 2 * 1024 * 1024


@click.command("import")
@click.argument("file", metavar="FILE", type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "--env", metavar="E", help="Environment to import into (default: $CREDWARDEN_ENV or dev)."
)
@click.option("--service", required=True, metavar="S", help="Service the variables belong to.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(_FORMATS),
    help="File format (default: json for *.json, otherwise dotenv).",
)
@click.option("--overwrite", is_flag=True, help="Replace existing values (each a new version).")
@click.option("--json", "as_json", is_flag=True, help="Print the imported credentials as JSON.")
def import_(
    file: str, env: str | None, service: str, fmt: str | None, overwrite: bool, as_json: bool
) -> None:
    """Import a .env or flat JSON file: each VAR becomes the secret ENV/SERVICE/var.

    FILE '-' reads standard input. All or nothing: a malformed file stores nothing.
    DATABASE_URL in service app of dev becomes dev/app/database-url (env_var DATABASE_URL).
    """
    from ..errors import ValidationError

    fmt = fmt or ("json" if file.lower().endswith(".json") else "dotenv")
    source = "<stdin>" if file == "-" else os.path.basename(file)
    if file == "-":
        try:
            text = sys.stdin.read(MAX_IMPORT + 1)
        except UnicodeDecodeError:
            raise ValidationError(f"{source} is not UTF-8 text") from None
        if len(text) > MAX_IMPORT:
            raise ValidationError(f"{source} is too large (at most {MAX_IMPORT} bytes)")
    else:
        from ..files import read_user_text

        text = read_user_text(file, limit=MAX_IMPORT, what="import file")
    if fmt == "json":
        from ..formats.jsonenv import parse_json_env

        entries = parse_json_env(text, source=source)
    else:
        from ..formats.dotenv import parse_dotenv

        entries = parse_dotenv(text, source=source)
    with open_warden() as w:
        env = env or w.settings.default_env
        infos = w.import_entries(entries, env=env, service=service, overwrite=overwrite)
    if as_json:
        from .output import print_json

        print_json([i.to_dict() for i in infos])
        return
    click.echo(f"imported {len(infos)} variables into {env}/{service}")
    for i in infos:
        click.echo(f"  {i.address} (version {i.version})")


@click.command()
@click.option("--env", metavar="E", help="Environment to export (default: $CREDWARDEN_ENV or dev).")
@click.option("--format", "fmt", type=click.Choice(_FORMATS), default="dotenv", show_default=True)
@click.option(
    "--only",
    multiple=True,
    metavar="PATTERN",
    help="Only credentials matching an address pattern, e.g. dev/stripe/* (repeatable).",
)
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    help="Write to FILE (created with mode 0600) instead of standard output.",
)
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
def export(
    env: str | None, fmt: str, only: tuple[str, ...], output: str | None, force: bool
) -> None:
    """Print an environment's variables as dotenv or JSON (values in clear: every read audited)."""
    from ..address import check_pattern

    for p in only:
        check_pattern(p)
    with open_warden() as w:
        env = env or w.settings.default_env
        secrets = _env_vars(w, env, only)
    items = [(name, s.reveal()) for name, s in secrets.items()]
    if fmt == "json":
        from ..formats.jsonenv import dump_json_env

        text = dump_json_env(items)
    else:
        from ..formats.dotenv import dump_dotenv

        text = dump_dotenv(items)
    if not items:
        click.echo(f"no variables in {env}" + (" matching --only" if only else ""), err=True)
    if output is None or output == "-":
        click.echo(text, nl=False)
        return
    _write_private(output, text, force=force)
    click.echo(f"exported {len(items)} variables from {env} to {output}", err=True)


def _env_vars(w: Facade, env: str, only: tuple[str, ...]) -> dict[str, Secret]:
    """The variables of `env`; a mistyped environment is an error, not an empty set."""
    if env not in w.environments:
        from ..errors import UnknownEnvironment

        raise UnknownEnvironment(
            f"unknown environment {env!r} (known: {', '.join(w.environments)})",
            hint="`credwarden environments` lists them",
        )
    return w.env_vars(env=env, only=list(only))


def _write_private(path: str, text: str, *, force: bool) -> None:
    """Write a file only its owner can read; never replace one unless asked to."""
    data = text.encode("utf-8")
    try:
        _write(path, data, force=force)
    except FileExistsError:
        raise click.UsageError(f"{path} exists; pass --force to replace it") from None
    except OSError as exc:
        raise click.UsageError(
            f"cannot write {path[:200]}: {exc.strerror or type(exc).__name__}"
        ) from None


def _write(path: str, data: bytes, *, force: bool) -> None:
    if not force:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return
    import tempfile

    if os.path.isdir(path):
        raise IsADirectoryError(21, "Is a directory")
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".cw-export-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--env", metavar="E", help="Environment (default: $CREDWARDEN_ENV or dev).")
@click.option(
    "--only",
    multiple=True,
    metavar="ADDRESS_PATTERN",
    help="Only credentials matching a pattern, e.g. dev/stripe/* (repeatable).",
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED, metavar="-- COMMAND...")
def run(env: str | None, only: tuple[str, ...], command: tuple[str, ...]) -> None:
    """Run COMMAND with the environment's credentials as environment variables.

    \b
    Example:
      credwarden run --env prod --only 'prod/stripe/*' -- python billing.py

    COMMAND replaces credwarden, so its exit code and signals are its own.
    CREDWARDEN_MASTER_KEY and CREDWARDEN_PASSPHRASE are not passed on to it.
    """
    if not command:
        raise click.UsageError("no command given: credwarden run [--env E] -- COMMAND...")
    if any("\x00" in part for part in command):
        raise click.UsageError("COMMAND holds a NUL byte, which no program can be given")
    from ..address import check_pattern

    for p in only:
        check_pattern(p)
    program = _resolve(command[0])
    with open_warden() as w:
        env = env or w.settings.default_env
        secrets = _env_vars(w, env, only)
    child = {k: v for k, v in os.environ.items() if k not in _WITHHELD}
    child.update((name, s.reveal()) for name, s in secrets.items())
    sys.stdout.flush()
    sys.stderr.flush()
    if os.name == "nt":
        import subprocess

        sys.exit(subprocess.run([program, *command[1:]], env=child).returncode)
    try:
        os.execve(program, list(command), child)  # noqa: S606 - running COMMAND is the point
    except OSError as exc:
        _fail(126, f"cannot run {command[0]}: {exc.strerror}")


def _resolve(name: str) -> str:
    """The program's path (as the shell would find it), or exit 127 like a shell does."""
    import shutil

    found = shutil.which(name)
    if found is None:
        _fail(127, f"command not found: {name}")
    return found


def _fail(code: int, message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)
