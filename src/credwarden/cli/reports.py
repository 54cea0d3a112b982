"""`credwarden report expiring|rotation|unused|permissions`: lifecycle and access reviews."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import click

from ..model import CredentialInfo
from ..timeutil import parse_duration, parse_iso, utcnow
from .context import open_warden
from .output import print_json, print_table


@click.group()
def report() -> None:
    """Lifecycle reports: what expires, what is due for rotation, what nobody uses, and
    which grants are wider than what they are used for."""


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
@_days_option("Unused for at least this many days.")
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


_BROAD_ACTIONS = frozenset({"read", "write", "admin"})


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
    from ..access.grants import GrantIndex, required_action

    cutoff = utcnow() - timedelta(days=days)
    with open_warden() as w:
        grants = w.grants(principal_name)
        protected = w.protected_environments()
        events = {name: w.audit_events(principal=name) for name in {g.principal for g in grants}}
    rows: list[dict[str, Any]] = []
    for g in grants:
        index = GrantIndex([g], protected)
        last = None
        for ev in reversed(events[g.principal]):
            if (
                ev.result == "ok"
                and ev.address is not None
                and index.allows(g.principal, required_action(ev.action), ev.address)
            ):
                last = ev.ts
                break
        flags = []
        if last is None or parse_iso(last) <= cutoff:
            flags.append("unused")
        env, service, _name = g.pattern.split("/")
        if (_wild(env) or _wild(service)) and g.actions & _BROAD_ACTIONS:
            flags.append("broad")
        if "admin" in g.actions:
            flags.append("admin")
        if flagged and not flags:
            continue
        rows.append({**g.to_dict(), "last_used_at": last, "flags": flags})
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


def _wild(segment: str) -> bool:
    return "*" in segment or "?" in segment
