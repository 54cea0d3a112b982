"""Who may do what: `principal ...`, `grant`, `grants` and `revoke-grant` over the facade."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from ..access.grants import ACTIONS, ROLES, Grant
from ..facade import Facade
from .context import open_warden
from .output import print_fields, print_json, print_table

_TYPES = ("user", "workflow", "service")
_F = TypeVar("_F", bound=Callable[..., Any])
_WILD = frozenset("*?")


def _short(ts: str | None) -> str:
    """`2026-05-01T12:34:56.789Z` -> `2026-05-01 12:34:56`, for tables."""
    return "" if not ts else ts[:19].replace("T", " ")


def _require_principal(w: Facade, name: str) -> None:
    """Exit 4 for an unknown principal where the facade would just answer an empty list."""
    if all(p.name != name for p in w.principals()):
        from ..errors import NotFound

        raise NotFound(
            f"no principal {name!r}", hint="`credwarden principal list` shows the principals"
        )


def _is_wild(segment: str) -> bool:
    return not _WILD.isdisjoint(segment)


def _note_protected(pattern: str, protected: Sequence[str], held: Sequence[str] = ()) -> None:
    """Tell people (on stderr) that a wildcard environment never reaches protected ones
    (those the principal already holds a grant on by name are left out)."""
    env, rest = pattern.split("/", 1)
    missing = [p for p in protected if f"{p}/{rest}" not in held and f"{p}/*/*" not in held]
    if not _is_wild(env) or not missing:
        return
    examples = " or ".join(f"{p}/{rest}" for p in missing)
    click.echo(
        f"note: {pattern!r} does not reach protected environments ({', '.join(missing)}):"
        f" grant {examples} explicitly",
        err=True,
    )


def _grant_rows(grants: Sequence[Grant]) -> list[tuple[Any, ...]]:
    return [
        (
            g.principal,
            g.pattern,
            ",".join(sorted(g.actions)),
            g.role or "",
            _short(g.created_at),
            g.created_by,
        )
        for g in grants
    ]


_GRANT_COLUMNS = ("PRINCIPAL", "PATTERN", "ACTIONS", "ROLE", "CREATED", "BY")


# -- principal -----------------------------------------------------------------------------------


@click.group()
def principal() -> None:
    """Principals (users, workflows, services) and their API tokens.

    \b
    Examples:
      credwarden principal add nightly --type workflow --role runner --pattern 'prod/stripe/*'
      credwarden principal token nightly --expires 90d
      credwarden principal show nightly
    """


@principal.command("add")
@click.argument("name")
@click.option(
    "--type",
    "type_",
    type=click.Choice(_TYPES),
    default="workflow",
    show_default=True,
    help="What kind of caller it is.",
)
@click.option("--owner", metavar="WHO", help="The person or team responsible for it.")
@click.option("--description", metavar="TEXT", help="What it is for.")
@click.option(
    "--role",
    type=click.Choice(tuple(ROLES)),
    help="Also grant it this role: admin (everything), editor (read, write, rotate),"
    " runner (use, read), viewer (describe).",
)
@click.option(
    "--pattern",
    default="*",
    show_default=True,
    metavar="P",
    help="The address pattern the --role applies to, e.g. 'prod/stripe/*'.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the principal as JSON.")
@click.pass_context
def principal_add(
    ctx: click.Context,
    name: str,
    type_: str,
    owner: str | None,
    description: str | None,
    role: str | None,
    pattern: str,
    as_json: bool,
) -> None:
    """Add a principal NAME (lower-case letters, digits, '.', '_', '-'); it can do nothing
    until granted something (--role here, or `credwarden grant`)."""
    if role is None and ctx.get_parameter_source("pattern") is not ParameterSource.DEFAULT:
        raise click.UsageError("--pattern applies to --role: give a --role too")
    with open_warden() as w:
        rec = w.add_principal(
            name, type=type_, owner=owner, description=description, role=role, pattern=pattern
        )
        grants = w.grants(name) if role is not None else []
        protected = w.protected_environments() if role is not None else []
    if as_json:
        print_json({**rec.to_dict(), "grants": [g.to_dict() for g in grants]})
    else:
        click.echo(f"added principal {rec.name} ({rec.type})")
        for g in grants:
            click.echo(f"granted {g.role or ','.join(sorted(g.actions))} on {g.pattern}")
    for g in grants:
        _note_protected(g.pattern, protected, [h.pattern for h in grants])
    if not as_json:
        click.echo(f"next: credwarden principal token {rec.name}", err=True)


@principal.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def principal_list(as_json: bool) -> None:
    """List the principals."""
    with open_warden() as w:
        recs = sorted(w.principals(), key=lambda r: r.name)
    if as_json:
        print_json([r.to_dict() for r in recs])
        return
    if not recs:
        click.echo("no principals; add one with `credwarden principal add`", err=True)
        return
    print_table(
        ("NAME", "TYPE", "OWNER", "DESCRIPTION", "CREATED", "BY"),
        [
            (r.name, r.type, r.owner, r.description, _short(r.created_at), r.created_by)
            for r in recs
        ],
    )


@principal.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the principal as JSON.")
def principal_show(name: str, as_json: bool) -> None:
    """Show a principal, its grants and its API tokens (ids and dates, never the tokens)."""
    with open_warden() as w:
        info = w.principal_info(name)
    if as_json:
        print_json(info)
        return
    print_fields(
        [
            ("name", info["name"]),
            ("type", info["type"]),
            *((k, info[k]) for k in ("owner", "description") if info.get(k)),
            ("created", _short(info.get("created_at"))),
            ("created by", info.get("created_by")),
        ]
    )
    click.echo()
    grants = [Grant.from_dict(g) for g in info["grants"]]
    if grants:
        print_table(_GRANT_COLUMNS[1:], [row[1:] for row in _grant_rows(grants)], title="grants")
    else:
        click.echo(f"grants: none (credwarden grant {name} PATTERN --actions ...)")
    click.echo()
    if info["tokens"]:
        _print_tokens(info["tokens"], title="tokens")
    else:
        click.echo(f"tokens: none (credwarden principal token {name})")


@principal.command("rm")
@click.argument("name")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print what was removed as JSON.")
def principal_rm(name: str, yes: bool, as_json: bool) -> None:
    """Remove a principal with its grants and API tokens (its tokens stop working at once)."""
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError(
                f"refusing to remove principal {name} without --yes"
                " (standard input is not a terminal)"
            )
        click.confirm(
            f"Remove principal {name}, its grants and its API tokens?", abort=True, err=True
        )
    with open_warden() as w:
        removed = w.remove_principal(name)
    if as_json:
        print_json({"principal": name, "removed": True, **removed})
    else:
        n_grants, n_tokens = removed.get("grants", 0), removed.get("tokens", 0)
        click.echo(
            f"removed principal {name} ({n_grants} grant{'' if n_grants == 1 else 's'},"
            f" {n_tokens} API token{'' if n_tokens == 1 else 's'})"
        )


@principal.command("token")
@click.argument("name")
@click.option(
    "--expires",
    metavar="DURATION",
    help="Lifetime, e.g. 90d, 12h, 1w (default: no expiry; revoke with `revoke-token`).",
)
@click.option("--description", metavar="TEXT", help="What or where it is used.")
@click.option("--json", "as_json", is_flag=True, help='Print {"id", "token", "expires_at"}.')
def principal_token(name: str, expires: str | None, description: str | None, as_json: bool) -> None:
    """Issue a new API token for NAME and print it alone on the last line of standard output.

    The token is shown this once and stored only as a salted hash: put it straight into the
    workflow's secret store (CREDWARDEN_TOKEN). Notes go to standard error.

    \b
    Example:
      TOKEN=$(credwarden principal token nightly-invoices --expires 90d)
    """
    from ..timeutil import parse_duration

    expires_in = (
        None
        if expires is None or expires.lower() == "never"
        else parse_duration(expires, what="--expires")
    )
    with open_warden() as w:
        rec, secret = w.issue_token(name, expires_in=expires_in, description=description)
    token = secret.reveal()
    expires_at = rec.get("expires_at")
    if as_json:
        print_json({"id": rec["id"], "principal": name, "token": token, "expires_at": expires_at})
        return
    when = f"expires {_short(expires_at)} UTC" if expires_at else "never expires"
    click.echo(
        f"API token {rec['id']} for {name}: shown once, stored hashed; {when}."
        f" Revoke it with `credwarden principal revoke-token {rec['id']}`.",
        err=True,
    )
    click.echo(token)


def _status(t: dict[str, Any]) -> str:
    if t.get("revoked_at"):
        return "revoked"
    expires = t.get("expires_at")
    if expires:
        from ..timeutil import iso, utcnow

        if expires <= iso(utcnow()):
            return "expired"
    return "active"


def _print_tokens(tokens: Sequence[dict[str, Any]], *, title: str | None = None) -> None:
    print_table(
        ("ID", "PRINCIPAL", "STATUS", "CREATED", "EXPIRES", "LAST USED", "REVOKED", "DESCRIPTION"),
        [
            (
                t["id"],
                t["principal"],
                _status(t),
                _short(t.get("created_at")),
                _short(t.get("expires_at")) or "never",
                _short(t.get("last_used_at")) or "never",
                _short(t.get("revoked_at")),
                t.get("description"),
            )
            for t in tokens
        ],
        title=title,
    )


@principal.command("tokens")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def principal_tokens(name: str | None, as_json: bool) -> None:
    """List API tokens (all, or NAME's): ids, dates and status, never the tokens."""
    with open_warden() as w:
        tokens = w.tokens(name)
        if name is not None and not tokens:
            _require_principal(w, name)
    tokens = sorted(tokens, key=lambda t: (t["principal"], t.get("created_at") or ""))
    if as_json:
        print_json([{**t, "status": _status(t)} for t in tokens])
        return
    if not tokens:
        click.echo("no API tokens; issue one with `credwarden principal token NAME`", err=True)
        return
    _print_tokens(tokens)


@principal.command("revoke-token")
@click.argument("token_id")
@click.option("--json", "as_json", is_flag=True, help="Print the revoked token's record as JSON.")
def principal_revoke_token(token_id: str, as_json: bool) -> None:
    """Revoke the API token TOKEN_ID (the 12 hex digits after `cwt_`): refused from now on."""
    with open_warden() as w:
        rec = w.revoke_token(token_id)
    if as_json:
        print_json({**rec, "status": _status(rec)})
    else:
        click.echo(f"revoked API token {rec['id']} of {rec['principal']}")


# -- grants --------------------------------------------------------------------------------------


def _actions_option(help_text: str) -> Callable[[_F], _F]:
    return click.option(
        "--actions",
        metavar="ACTION[,ACTION]",
        help=f"{help_text} Actions: {', '.join(ACTIONS)}.",
    )


@click.command()
@click.argument("principal_name", metavar="PRINCIPAL")
@click.argument("pattern")
@_actions_option("What it may do (comma-separated).")
@click.option(
    "--role",
    type=click.Choice(tuple(ROLES)),
    help="Instead of --actions: admin, editor, runner or viewer.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the resulting grant as JSON.")
def grant(
    principal_name: str, pattern: str, actions: str | None, role: str | None, as_json: bool
) -> None:
    """Allow PRINCIPAL ACTIONS on credentials matching PATTERN (env/service/name, wildcards
    allowed). A second grant on the same pattern adds to the first.

    admin implies every action, read implies use, and any action implies describe.
    A wildcard environment never reaches a protected environment (prod by default):
    grant those by name.

    \b
    Examples:
      credwarden grant nightly-invoices 'prod/stripe/*' --actions use
      credwarden grant alice '*/*/*' --role viewer
    """
    if (actions is None) == (role is None):
        raise click.UsageError("give either --actions or --role (e.g. --actions read,use)")
    with open_warden() as w:
        g = w.grant(principal_name, pattern, actions=actions, role=role)
        protected: list[str] = []
        held: list[str] = []
        if _is_wild(g.pattern.split("/", 1)[0]):  # only then is there something to point out
            protected = w.protected_environments()
            held = [h.pattern for h in w.grants(principal_name)] if protected else []
    if as_json:
        print_json(g.to_dict())
    else:
        print_fields(
            [
                ("principal", g.principal),
                ("pattern", g.pattern),
                ("actions", ",".join(sorted(g.actions))),
                *((("role", g.role),) if g.role else ()),
            ]
        )
    _note_protected(g.pattern, protected, held)


@click.command()
@click.option("--principal", "principal_name", metavar="P", help="Only this principal's grants.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def grants(principal_name: str | None, as_json: bool) -> None:
    """List grants: who may do what on which address patterns."""
    with open_warden() as w:
        found = w.grants(principal_name)
        if principal_name is not None and not found:
            _require_principal(w, principal_name)
    if as_json:
        print_json([g.to_dict() for g in found])
        return
    if not found:
        click.echo("no grants; add one with `credwarden grant PRINCIPAL PATTERN`", err=True)
        return
    print_table(_GRANT_COLUMNS, _grant_rows(found))


@click.command("revoke-grant")
@click.argument("principal_name", metavar="PRINCIPAL")
@click.argument("pattern")
@_actions_option("Remove only these actions (comma-separated); without it the whole grant goes.")
@click.option("--json", "as_json", is_flag=True, help="Print what is left of the grant as JSON.")
def revoke_grant(principal_name: str, pattern: str, actions: str | None, as_json: bool) -> None:
    """Take back PRINCIPAL's grant on PATTERN (exactly as granted), or some of its actions."""
    from ..access.grants import normalize_pattern

    norm = normalize_pattern(pattern)
    with open_warden() as w:
        left = w.revoke_grant(principal_name, norm, actions=actions)
    if as_json:
        print_json(
            {
                "principal": principal_name,
                "pattern": norm,
                "removed": left is None,
                "grant": left.to_dict() if left is not None else None,
            }
        )
    elif left is None:
        click.echo(f"removed {principal_name}'s grant on {norm}")
    else:
        click.echo(
            f"{principal_name} keeps {','.join(sorted(left.actions))} on {norm} (removed {actions})"
        )
