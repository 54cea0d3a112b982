"""The audit log: `audit` queries it, `audit verify` checks its hash chain."""

from __future__ import annotations

import click

from ..warden.checks import MAX_AUDIT_LIMIT
from .context import open_warden
from .output import print_json, print_table


@click.group(invoke_without_command=True)
@click.option("--address", metavar="A", help="Only events about this credential.")
@click.option("--principal", metavar="P", help="Only events by this principal.")
@click.option("--since", metavar="T", help="Only events since T: 24h, 7d, YYYY-MM-DD or ISO time.")
@click.option(
    "--limit",
    type=click.IntRange(1, MAX_AUDIT_LIMIT),
    metavar="N",
    help="Only the last N events.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of events.")
@click.pass_context
def audit(
    ctx: click.Context,
    address: str | None,
    principal: str | None,
    since: str | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """Show audit events, oldest first (every read, use, change and denial is one event).

    `credwarden audit verify` checks that no event was edited, removed or reordered.
    """
    if ctx.invoked_subcommand is not None:
        return
    with open_warden() as w:
        events = w.audit_events(address=address, principal=principal, since=since, limit=limit)
    for e in events:
        if e.result == "unreadable" and not e.action:
            click.echo(
                f"warning: audit event {e.seq} is corrupt (it does not decode);"
                " run `credwarden audit verify`",
                err=True,
            )
    if as_json:
        print_json([e.to_dict() for e in events])
        return
    if not events:
        click.echo("no audit events match", err=True)
        return
    print_table(
        ("SEQ", "TIME", "PRINCIPAL", "ACTION", "ADDRESS", "VERSION", "RESULT"),
        [
            (
                e.seq,
                e.ts[:19].replace("T", " "),
                e.principal,
                e.action,
                e.address,
                e.version,
                e.result,
            )
            for e in events
        ],
    )


@audit.command(short_help="Check the hash chain: exit 0 intact, 1 tampered.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def verify(ctx: click.Context, as_json: bool) -> None:
    """Check the whole hash chain: exit 0 if intact, 1 naming the first bad event."""
    with open_warden() as w:
        report = w.verify_audit()
    if as_json:
        print_json(report.to_dict())
    elif report.ok:
        click.echo(f"audit log intact: {report.checked} events")
    else:
        where = (
            f"first bad event {report.first_bad_seq}"
            if report.first_bad_seq is not None
            else "the head record"
        )
        click.echo(f"audit log TAMPERED: {where}: {report.reason}")
    if not report.ok:
        ctx.exit(1)
