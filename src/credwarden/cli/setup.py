"""Setting up a store: `init`, `environments`, and `key rotate`."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

from ..warden import Warden
from .context import open_warden, prompt_secret
from .output import print_fields, print_json


@click.command()
@click.option(
    "--passphrase",
    is_flag=True,
    help="Derive the master key from a passphrase (Argon2id) instead of making a key file;"
    " asked with hidden input, or taken from CREDWARDEN_PASSPHRASE.",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
def init(passphrase: bool, as_json: bool) -> None:
    """Create the store and its master key (safe to run again).

    By default the master key is a new file, CREDWARDEN_HOME/master.key (mode 0600).
    With CREDWARDEN_MASTER_KEY or CREDWARDEN_MASTER_KEY_FILE set, that key is used.
    An existing key is never overwritten: on an initialised store, init only checks
    that the key opens it.
    """
    settings = None
    if passphrase:
        from ..settings import Settings

        settings = Settings.from_env()._replace(master_key_source="passphrase")
    w, report = Warden.init(settings=settings, source="cli", prompt=prompt_secret)
    w.close()
    on_key_file = report.key_source.startswith("key file ")
    if as_json:
        print_json(report.to_dict())
        return
    if not report.created:
        click.echo(f"already initialised: {report.home} (master key from {report.key_source})")
        return
    click.echo("initialised a new credwarden store")
    print_fields(
        [
            ("  home", report.home),
            ("  database", report.database),
            ("  master key", report.key_source),
            ("  environments", ", ".join(w.environments)),
        ]
    )
    if on_key_file:
        click.echo(
            "Back up the key file somewhere safe: without it nothing in this store can be"
            " decrypted, and whoever has it (and the database) can read every credential.",
            err=True,
        )


@click.group(invoke_without_command=True)
@click.option("--protected", "only_protected", is_flag=True, help="Only the protected ones.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_context
def environments(ctx: click.Context, only_protected: bool, as_json: bool) -> None:
    """List the environments (the first part of every address), add one, or protect one.

    A protected environment (prod by default) is reached only by grants that name it:
    a wildcard environment such as '*/stripe/*' does not reach it.
    """
    if ctx.invoked_subcommand is None:
        _list_environments(only_protected, as_json)


@environments.command("list")
@click.option("--protected", "only_protected", is_flag=True, help="Only the protected ones.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def environments_list(only_protected: bool, as_json: bool) -> None:
    """List the environments (the default subcommand), one name a line.

    Which are protected is noted on standard error (or use --protected).
    """
    _list_environments(only_protected, as_json)


def _list_environments(only_protected: bool, as_json: bool) -> None:
    with open_warden() as w:
        names = list(w.environments)
        protected = w.protected_environments()
    if only_protected:
        names = [n for n in names if n in protected]
    if as_json:
        print_json(names)
        return
    for name in names:
        click.echo(name)
    shown = [n for n in names if n in protected]
    if shown and not only_protected:
        click.echo(
            f"protected (grants must name them): {', '.join(shown)}",
            err=True,
        )


@environments.command("add")
@click.argument("name")
def environments_add(name: str) -> None:
    """Add an environment NAME (lower-case letters, digits, '.', '_', '-')."""
    with open_warden() as w:
        names = w.add_environment(name)
    click.echo(f"added environment {name} (environments: {', '.join(names)})")


@environments.command("protect")
@click.argument("env")
@click.option("--json", "as_json", is_flag=True, help="Print the protected environments as JSON.")
def environments_protect(env: str, as_json: bool) -> None:
    """Protect ENV: from now on only grants naming ENV reach it (no wildcard environment)."""
    with open_warden() as w:
        before = w.protected_environments()
        protected = w.protect_environment(env, True)
        cut = [] if env in before else w.grants()
    cut = [g for g in cut if _reaches_by_wildcard(g.pattern, env)]
    if as_json:
        print_json(protected)
        return
    click.echo(f"protected {env} (protected: {', '.join(protected)})")
    if cut:
        click.echo(
            f"note: {len(cut)} grant(s) with a wildcard environment no longer reach {env}: "
            + ", ".join(f"{g.principal} {g.pattern}" for g in cut),
            err=True,
        )


@environments.command("unprotect")
@click.argument("env")
@click.option("--json", "as_json", is_flag=True, help="Print the protected environments as JSON.")
def environments_unprotect(env: str, as_json: bool) -> None:
    """Stop protecting ENV: grants with a wildcard environment reach it again."""
    with open_warden() as w:
        protected = w.protect_environment(env, False)
    if as_json:
        print_json(protected)
        return
    left = ", ".join(protected) if protected else "none"
    click.echo(f"{env} is no longer protected (protected: {left})")


def _reaches_by_wildcard(pattern: str, env: str) -> bool:
    """Whether a grant's environment segment is a wildcard that matches `env`."""
    from fnmatch import fnmatchcase

    segment = pattern.split("/", 1)[0]
    return ("*" in segment or "?" in segment) and fnmatchcase(env, segment)


@click.group()
def key() -> None:
    """Manage the encryption keys."""


@key.command("rotate")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def rotate(as_json: bool) -> None:
    """Start a new key-encryption key term and re-wrap every data key under it.

    Runs online, in batches: readers keep working meanwhile and no secret is re-entered.
    The master key itself does not change.
    """
    with open_warden() as w, _progress(enabled=not as_json and sys.stderr.isatty()) as progress:
        result = w.rotate_key(progress=progress)
    if as_json:
        print_json(result)
    else:
        click.echo(
            f"rotated the key-encryption key: now term {result['term']},"
            f" {result['rewrapped']} data keys re-wrapped"
        )


@contextmanager
def _progress(*, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A Rich progress bar on stderr when it is a terminal; otherwise no callback at all."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("re-wrapping data keys", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or 1)

        yield update
