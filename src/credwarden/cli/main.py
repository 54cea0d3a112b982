"""`credwarden` entry point: `get ADDRESS` is answered without importing click (cold start).

Every other command line goes to the click application in `app.py`. The fast
path accepts only the plain forms of `get` (an address and -n); anything else,
`--help` included, falls through to click, so behaviour is the same either way.
"""

from __future__ import annotations

import os
import sys
from typing import Any, NoReturn

from ..errors import CredwardenError


def report_error(exc: CredwardenError) -> None:
    """Print an error and its hint on stderr (never a secret: messages are built to be safe)."""
    sys.stderr.write(f"error: {exc.message}\n")
    if exc.hint:
        sys.stderr.write(f"hint: {exc.hint}\n")


def _fast_get(args: list[str]) -> int | None:
    """`get ADDRESS [-n]` without click; None when the arguments need the full parser."""
    refs = [a for a in args if a not in ("-n", "--no-newline")]
    if len(refs) != 1 or refs[0].startswith("-"):
        return None
    from .context import open_warden

    with open_warden() as w:
        value = w.get(refs[0]).reveal()
    sys.stdout.write(value if len(refs) < len(args) else value + "\n")
    sys.stdout.flush()
    return 0


def main(argv: list[str] | None = None) -> Any:
    args = sys.argv[1:] if argv is None else argv
    try:
        if args[:1] == ["get"]:
            rc = _fast_get(args[1:])
            if rc is not None:
                return rc
        import click

        from .app import cli

        try:
            rc = cli.main(args=args, prog_name="credwarden", standalone_mode=False)
            if isinstance(rc, int) and rc:  # ctx.exit(N) in a command
                _exit(rc)
            return 0
        except click.exceptions.Abort:  # Ctrl-C (click turns KeyboardInterrupt into Abort)
            raise KeyboardInterrupt from None
        except click.exceptions.ClickException as exc:  # usage errors: exit 2, as click does
            exc.show()
            _exit(exc.exit_code)
        except click.exceptions.Exit as exc:
            _exit(exc.exit_code)
    except CredwardenError as exc:
        report_error(exc)
        _exit(exc.exit_code)
    except KeyboardInterrupt:
        context = sys.modules.get("credwarden.cli.context")
        untouched = context is None or not getattr(context, "OPENED", None)
        sys.stderr.write("\ninterrupted: nothing was stored\n" if untouched else "\ninterrupted\n")
        _exit(130)
    except BrokenPipeError:  # `credwarden list | head -1`: the reader left, nothing to say
        _quiet_stdout()
        _exit(1)
    except Exception as exc:  # a bug: one line, never the exception's text (it may hold anything)
        if os.environ.get("CREDWARDEN_DEBUG"):
            raise
        sys.stderr.write(
            f"error: internal error ({type(exc).__name__}); this is a bug in credwarden\n"
            "hint: run again with CREDWARDEN_DEBUG=1 for the traceback, and report it\n"
        )
        _exit(1)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so that Python's own flush at exit does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _exit(code: int) -> NoReturn:
    sys.exit(code)
