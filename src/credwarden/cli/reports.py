"""`credwarden report expiring|rotation|unused`: lifecycle reports over credential metadata."""

from __future__ import annotations

from datetime import timedelta

import click

from ..model import CredentialInfo
from ..timeutil import parse_duration, parse_iso, utcnow
from .context import open_warden
from .output import print_json, print_table


@click.group()
def report() -> None:
    """Lifecycle reports: what expires, what is due for rotation, what nobody uses."""


def _show(
    rows: list[tuple[CredentialInfo, str]], as_json: bool, columns: tuple[str, ...], empty: str
) -> None:
    if as_json:
        print_json([{**i.to_dict(), "why": why} for i, why in rows])
        return
    if not rows:
        click.echo(empty, err=True)
        return
    print_table(columns, [(i.address, i.kind, i.health, i.owner, why) for i, why in rows])


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
    horizon = utcnow() + timedelta(seconds=parse_duration(within))
    with open_warden() as w:
        infos = w.list()
    rows = sorted(
        (
            (i, f"expires {i.expires_at[:10]}")
            for i in infos
            if i.expires_at and parse_iso(i.expires_at) <= horizon
        ),
        key=lambda r: r[0].expires_at or "",
    )
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
    now = utcnow()
    with open_warden() as w:
        infos = w.list()
    rows = []
    for i in infos:
        if i.rotate_every:
            due = parse_iso(i.rotated_at) + timedelta(seconds=i.rotate_every)
            if due <= now:
                rows.append((i, f"due since {due.date()} (last {i.rotated_at[:10]})"))
    _show(
        rows, as_json, ("ADDRESS", "KIND", "HEALTH", "OWNER", "ROTATION"), "no rotation is overdue"
    )


@report.command()
@click.option(
    "--days",
    default=90,
    show_default=True,
    type=click.IntRange(min=1),
    help="Unused for at least this many days.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def unused(days: int, as_json: bool) -> None:
    """Credentials nobody read or used for DAYS days (candidates for retirement)."""
    cutoff = utcnow() - timedelta(days=days)
    with open_warden() as w:
        infos = w.list()
    rows = []
    for i in infos:
        last = i.last_used_at
        if last is None and parse_iso(i.created_at) <= cutoff:
            rows.append((i, "never used"))
        elif last is not None and parse_iso(last) <= cutoff:
            rows.append((i, f"last used {last[:10]}"))
    _show(
        rows,
        as_json,
        ("ADDRESS", "KIND", "HEALTH", "OWNER", "LAST USE"),
        f"everything was used in the last {days} days",
    )
