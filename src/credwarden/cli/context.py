"""Opening the facade for a command: settings from the environment, hidden prompts on a TTY."""

from __future__ import annotations

import sys

from ..facade import Facade


def prompt_secret(label: str, confirm: bool) -> str:
    """Ask for a secret with hidden input; refuse when there is no terminal to ask on."""
    if not sys.stdin.isatty():
        from ..errors import UsageError

        raise UsageError(
            f"{label} is needed and standard input is not a terminal",
            hint="pass it with --stdin, --field or an environment variable",
        )
    import click

    value: str = click.prompt(label, hide_input=True, confirmation_prompt=confirm, err=True)
    return value


OPENED: list[bool] = []
"""Non-empty once this process opened a facade: until then an interrupt stored nothing."""


def open_warden() -> Facade:
    """The facade for a command: the local store, or the server CREDWARDEN_URL names."""
    from ..warden import Warden

    OPENED.append(True)
    return Warden.open(source="cli", prompt=prompt_secret)
