"""`credwarden report expiring|rotation|unused|permissions`: lifecycle and access reviews."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..timeutil import parse_duration
from .context import open_warden
from .output import print_json, print_table


@click.group()
def report() -> None:
    """Lifecycle reports: what expires, what is due for rotation, what nobody uses, and
    which grants are wider than what they are used for."""


def _show(rows: list[dict[str, Any]], as_json: bool, columns: tuple[str, ...], empty: str) -> None:
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo(empty, err=True)
        return
    print_table(
        columns, [(r["address"], r["kind"], r["health"], r["owner"], r["why"]) for r in rows]
    )


F = TypeVar("F", bound=Callable[..., Any])


def _days_option(help_text: str) -> Callable[[F], F]:
    return click.option(
        "--days", default=90, show_default=True, type=click.IntRange(min=1), help=help_text
    )


@report.command()
@click.option(
    "--within",
    default="30d",
    show_default=True,
    metavar="DURATION",
    help="Expiring within this long (e.g. 14d, 90d).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def expiring(within: str, as_json: bool) -> None:
    """Credentials that have expired or expire soon: secrets given --expires, certificates
    (their notAfter), keys with a stated end of life."""
    with open_warden() as w:
        rows = w.report_expiring(within=parse_duration(within, what="--within"))
    _show(
        rows,
        as_json,
        ("ADDRESS", "KIND", "HEALTH", "OWNER", "WHEN"),
        f"nothing expires within {within}",
    )


@report.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def rotation(as_json: bool) -> None:
    """Credentials whose rotation policy (--rotate-every) is overdue."""
    with open_warden() as w:
        rows = w.report_rotation()
    _show(
        rows, as_json, ("ADDRESS", "KIND", "HEALTH", "OWNER", "ROTATION"), "no rotation is overdue"
    )


@report.command()
@_days_option("Unused for at least this many days.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def unused(days: int, as_json: bool) -> None:
    """Credentials nobody read or used for DAYS days (candidates for retirement)."""
    with open_warden() as w:
        rows = w.report_unused(days=days)
    _show(
        rows,
        as_json,
        ("ADDRESS", "KIND", "HEALTH", "OWNER", "LAST USE"),
        f"everything was used in the last {days} days",
    )


@report.command()
@_days_option("A grant not used for this many days is flagged unused.")
@click.option("--principal", "principal_name", metavar="P", help="Only this principal's grants.")
@click.option("--flagged", is_flag=True, help="Only grants with at least one flag.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def permissions(days: int, principal_name: str | None, flagged: bool, as_json: bool) -> None:
    """Least-privilege review: every grant, when its principal last used it, and flags.

    \b
    Flags:
      unused  the principal never did anything this grant allows, or not in DAYS days
      broad   a wildcard environment or service with read, write or admin
      admin   the grant includes admin
    """
    with open_warden() as w:
        rows = w.review_permissions(days=days, principal=principal_name, flagged=flagged)
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("no grants are flagged" if flagged else "no grants", err=True)
        return
    print_table(
        ("PRINCIPAL", "PATTERN", "ACTIONS", "LAST USE", "FLAGS"),
        [
            (
                r["principal"],
                r["pattern"],
                ",".join(r["actions"]),
                (r["last_used_at"] or "")[:10] or "never",
                ",".join(r["flags"]),
            )
            for r in rows
        ],
    )
