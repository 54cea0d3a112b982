"""Managing credentials: `add`, `show`, `list`, `update`, `rm`, `history`, `rollback`.

Values go in through hidden prompts, standard input or a file; nothing here ever prints one.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from ..kinds import Kind, get_kind, kind_names
from ..lifecycle.health import HEALTH_STATES
from ..model import CredentialInfo, VersionInfo
from .context import open_warden, prompt_secret
from .output import print_fields, print_json, print_table

_NEVER = "never"


def _pairs(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> list[tuple[str, str]]:
    """Split repeated NAME=VALUE options; a missing '=' is a usage error (exit 2)."""
    out: list[tuple[str, str]] = []
    for raw in values:
        name, eq, value = raw.partition("=")
        if not eq or not name:
            # Only the part before '=' could be a name; never echo what might be a value.
            raise click.BadParameter(
                f"expected NAME=VALUE, got an argument without '=' ({len(raw)} characters)",
                ctx=ctx,
                param=param,
            )
        out.append((name.strip(), value))
    return out


def _read_stdin() -> str:
    """The whole of standard input, less one trailing line break (what `echo` adds)."""
    data = sys.stdin.read()
    if data.endswith("\r\n"):
        data = data[:-2]
    elif data.endswith("\n"):
        data = data[:-1]
    if not data:
        raise click.UsageError("--stdin was given but standard input was empty")
    return data


def _read_file(path: str) -> str:
    from ..files import read_user_text

    return read_user_text(path, limit=256 * 1024, what="--from-file")


def _main_field(k: Kind, flag: str) -> str:
    if k.main_field is None:
        raise click.UsageError(
            f"{flag} needs a kind with one main secret field; a {k.name} credential has"
            " several: give them with --field NAME=VALUE"
        )
    return k.main_field


def _warn_secret_fields(k: Kind, fields: list[tuple[str, str]]) -> None:
    for name, _value in fields:
        if k.is_secret(name):
            _warn_secret_field(name)


def _warn_secret_field(name: str) -> None:
    click.echo(
        f"warning: --field {name}=... puts a secret on the command line, where shell"
        " history and other users' `ps` may keep it; prefer the prompt or --stdin",
        err=True,
    )


def _when(text: str | None) -> str | None:
    """An --expires value as the ISO timestamp the facade stores."""
    if text is None or text.lower() == _NEVER:
        return None
    from ..timeutil import iso, parse_when

    return iso(parse_when(text, what="--expires"))


def _every(text: str | None) -> int | None:
    if text is None or text.lower() == _NEVER:
        return None
    from ..timeutil import parse_duration

    return parse_duration(text, what="--rotate-every")


def _tty() -> bool:
    return sys.stdin.isatty()


# -- add -----------------------------------------------------------------------------------------


@click.command()
@click.argument("address")
@click.option(
    "--kind",
    "kind_name",
    required=True,
    metavar="KIND",
    help=f"What the credential is: {', '.join(kind_names())}.",
)
@click.option("--provider", metavar="SLUG", help="The service it belongs to, e.g. stripe.")
@click.option(
    "--field",
    "fields",
    multiple=True,
    metavar="NAME=VALUE",
    callback=_pairs,
    help="A field value (repeatable). Secret fields left out are asked for with hidden input.",
)
@click.option(
    "--stdin",
    "from_stdin",
    is_flag=True,
    help="Read the secret value (the kind's main field) from standard input;"
    " one trailing newline is dropped.",
)
@click.option(
    "--from-file",
    type=click.Path(exists=True, dir_okay=False),
    metavar="PATH",
    help="Read the secret value (the kind's main field) from a file, as is.",
)
@click.option("--description", metavar="TEXT", help="What it is for.")
@click.option("--owner", metavar="WHO", help="Who to ask about it.")
@click.option(
    "--tag", "tags", multiple=True, metavar="K=V", callback=_pairs, help="A tag (repeatable)."
)
@click.option("--link", "links", multiple=True, metavar="URL", help="A related URL (repeatable).")
@click.option("--expires", metavar="DATE", help="When it expires: YYYY-MM-DD, ISO time or +90d.")
@click.option("--rotate-every", metavar="DURATION", help="Rotation policy, e.g. 90d.")
@click.option("--json", "as_json", is_flag=True, help="Print the stored metadata as JSON.")
def add(
    address: str,
    kind_name: str,
    provider: str | None,
    fields: list[tuple[str, str]],
    from_stdin: bool,
    from_file: str | None,
    description: str | None,
    owner: str | None,
    tags: list[tuple[str, str]],
    links: tuple[str, ...],
    expires: str | None,
    rotate_every: str | None,
    as_json: bool,
) -> None:
    """Store a new credential at ADDRESS (environment/service/name) as version 1.

    \b
    Examples:
      printf '%s' "$KEY" | credwarden add prod/stripe/billing --kind api_key --stdin
      credwarden add dev/db/main --kind basic --field username=app   (password is prompted)
    """
    if from_stdin and from_file:
        raise click.UsageError("give the value with --stdin or with --from-file, not both")
    k = get_kind(kind_name)
    values = dict(fields)
    _warn_secret_fields(k, fields)
    if from_stdin or from_file:
        main = (k.file_field if from_file and k.file_field else None) or _main_field(
            k, "--stdin" if from_stdin else "--from-file"
        )
        if main in values:
            raise click.UsageError(f"{main} is given twice (--field and --stdin/--from-file)")
        values[main] = _read_stdin() if from_stdin else _read_file(str(from_file))
    meta: dict[str, Any] = {
        "provider": provider,
        "description": description,
        "owner": owner,
        "tags": dict(tags),
        "links": list(links),
        "expires_at": _when(expires),
        "rotate_every": _every(rotate_every),
    }
    with open_warden() as w:
        for spec in k.fields:
            if not spec.required or spec.name in values:
                continue
            if spec.secret:
                values[spec.name] = prompt_secret(spec.name, False)
            elif _tty():
                values[spec.name] = click.prompt(spec.name, err=True)
        main_name = k.main_field
        if (
            k.needs_a_secret
            and main_name
            and not any(f.secret and f.name in values for f in k.fields)
        ):
            # No secret given at all (e.g. a service principal's client_secret): ask for it.
            values[main_name] = prompt_secret(main_name, False)
        info = w.add(address, k.name, values, **meta)
    if as_json:
        print_json(info.to_dict())
    else:
        click.echo(f"added {info.address} ({info.kind}, version {info.version})")
    if from_file and get_kind(info.kind).refreshable:
        import shlex

        click.echo(
            f"The key is stored encrypted. Delete the downloaded copy: rm {shlex.quote(from_file)}",
            err=True,
        )


# -- reading metadata ----------------------------------------------------------------------------


def _short(ts: str | None) -> str:
    """`2026-05-01T12:34:56.789Z` -> `2026-05-01 12:34:56`, for tables."""
    return "" if not ts else ts[:19].replace("T", " ")


@click.command()
@click.argument("address")
@click.option("--json", "as_json", is_flag=True, help="Print metadata and versions as JSON.")
def show(address: str, as_json: bool) -> None:
    """Show a credential's metadata, health, fields and versions (secret values masked)."""
    with open_warden() as w:
        info, versions = w.show(address)  # one operation, one audit event
    if as_json:
        print_json({**info.to_dict(), "versions": [v.to_dict() for v in versions]})
        return
    d = info.to_dict()
    pairs: list[tuple[str, Any]] = [
        ("address", info.address),
        ("kind", info.kind),
        ("version", info.version),
        ("health", info.health),
    ]
    pairs += [
        (label, value)
        for label, value in (
            ("provider", info.provider),
            ("description", info.description),
            ("owner", info.owner),
            ("tags", ", ".join(f"{k}={v}" for k, v in sorted(info.tags.items()))),
            ("links", " ".join(info.links)),
            ("expires", _short(info.expires_at)),
            ("rotate every", _duration(info.rotate_every)),
        )
        if value
    ]
    pairs += [
        ("created", _short(info.created_at)),
        ("updated", _short(info.updated_at)),
        ("rotated", _short(info.rotated_at)),
        ("last used", _short(info.last_used_at) or "never"),
    ]
    print_fields(pairs)
    click.echo("fields:")
    print_fields([(f"  {name}", value) for name, value in d["fields"].items()])
    click.echo()
    _print_versions(versions)


def _print_versions(versions: list[VersionInfo]) -> None:
    print_table(
        ("VERSION", "CREATED", "BY", "NOTE", "FIELDS", "CURRENT"),
        [
            (
                v.version,
                _short(v.created_at),
                v.created_by,
                v.note,
                ",".join(v.fields),
                "*" if v.current else "",
            )
            for v in versions
        ],
    )


def _duration(seconds: int | None) -> str:
    if not seconds:
        return ""
    from ..timeutil import format_duration

    return format_duration(seconds)


@click.command("list")
@click.option("--env", metavar="E", help="Only this environment.")
@click.option("--service", metavar="S", help="Only this service.")
@click.option("--kind", metavar="K", help="Only this kind.")
@click.option("--health", type=click.Choice(HEALTH_STATES), help="Only this health state.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def list_(
    env: str | None, service: str | None, kind: str | None, health: str | None, as_json: bool
) -> None:
    """List credentials (metadata only, never values)."""
    with open_warden() as w:
        infos = w.list(env=env, service=service, kind=kind, health=health)
    for i in infos:
        if i.health == "corrupt":
            click.echo(
                f"warning: the stored record of {i.address} is corrupt (it does not decode);"
                " run `credwarden audit verify` and restore it from a backup",
                err=True,
            )
    if as_json:
        print_json([i.to_dict() for i in infos])
        return
    if not infos:
        if env or service or kind or health:
            click.echo("no credentials match", err=True)
        else:
            click.echo("no credentials; add one with `credwarden add`", err=True)
        return
    print_table(
        ("ADDRESS", "KIND", "VERSION", "HEALTH", "OWNER", "LAST USED"),
        [_row(i) for i in infos],
    )


def _row(i: CredentialInfo) -> tuple[Any, ...]:
    return (i.address, i.kind, i.version, i.health, i.owner, _short(i.last_used_at) or "never")


@click.command()
@click.argument("address")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def history(address: str, as_json: bool) -> None:
    """List a credential's versions, newest first (no values)."""
    with open_warden() as w:
        versions = w.history(address)
    if as_json:
        print_json([v.to_dict() for v in versions])
        return
    _print_versions(versions)


# -- changing ------------------------------------------------------------------------------------


@click.command()
@click.argument("address")
@click.option(
    "--field",
    "fields",
    multiple=True,
    metavar="NAME=VALUE",
    callback=_pairs,
    help="Set a field (repeatable); any field change makes a new version.",
)
@click.option("--unset-field", "unset", multiple=True, metavar="NAME", help="Remove a field.")
@click.option(
    "--stdin",
    "from_stdin",
    is_flag=True,
    help="Read the new secret value (the kind's main field) from standard input.",
)
@click.option("--description", metavar="TEXT", help="What it is for ('' clears).")
@click.option("--owner", metavar="WHO", help="Who to ask about it ('' clears).")
@click.option(
    "--provider", metavar="SLUG", help="The service it belongs to, for `test` ('' clears)."
)
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="K=V",
    callback=_pairs,
    help="Set a tag, keeping the others (repeatable).",
)
@click.option("--clear-tags", is_flag=True, help="Remove every tag (before applying --tag).")
@click.option("--link", "links", multiple=True, metavar="URL", help="Add a link (repeatable).")
@click.option("--clear-links", is_flag=True, help="Remove every link (before applying --link).")
@click.option("--expires", metavar="DATE|never", help="New expiry, or 'never'.")
@click.option("--rotate-every", metavar="DURATION|never", help="New rotation policy, or 'never'.")
@click.option(
    "--if-version",
    type=click.IntRange(min=1),
    metavar="N",
    help="Fail with exit 6 unless the credential is still at version N.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the new metadata as JSON.")
def update(
    address: str,
    fields: list[tuple[str, str]],
    unset: tuple[str, ...],
    from_stdin: bool,
    description: str | None,
    owner: str | None,
    provider: str | None,
    tags: list[tuple[str, str]],
    clear_tags: bool,
    links: tuple[str, ...],
    clear_links: bool,
    expires: str | None,
    rotate_every: str | None,
    if_version: int | None,
    as_json: bool,
) -> None:
    """Change a credential's fields (a new version) and/or its metadata.

    \b
    Examples:
      printf '%s' "$NEW" | credwarden update prod/stripe/billing --stdin --if-version 3
      credwarden update prod/stripe/billing --owner payments --tag team=billing
    """
    values = dict(fields)
    meta: dict[str, Any] = {}
    for name, value in (("description", description), ("owner", owner), ("provider", provider)):
        if value is not None:
            meta[name] = value or None
    if expires is not None:
        meta["expires_at"] = _when(expires)
    if rotate_every is not None:
        meta["rotate_every"] = _every(rotate_every)
    main = _read_stdin() if from_stdin else None
    with open_warden() as w:
        if clear_tags:
            meta["tags"] = {}
        if tags:
            meta["add_tags"] = dict(tags)
        if clear_links:
            meta["links"] = []
        if links:
            meta["add_links"] = list(links)
        info = w.update(  # the kind's main field is resolved by the facade: one event
            address,
            fields=values,
            unset=list(unset),
            expected_version=if_version,
            main=main,
            **meta,
        )
    for name, _value in fields:
        if name in info.fields and info.fields[name] is None:  # a secret field
            _warn_secret_field(name)
    if as_json:
        print_json(info.to_dict())
    elif values or unset or main is not None:
        click.echo(f"updated {info.address} (now version {info.version})")
    else:
        click.echo(f"updated the metadata of {info.address} (still version {info.version})")


@click.command()
@click.argument("address")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--if-version",
    type=click.IntRange(min=1),
    metavar="N",
    help="Fail with exit 6 unless the credential is still at version N.",
)
def rm(address: str, yes: bool, if_version: int | None) -> None:
    """Delete a credential and crypto-shred every version (the audit record stays)."""
    if not yes:
        if not _tty():
            raise click.UsageError(
                f"refusing to delete {address} without --yes (standard input is not a terminal)"
            )
        click.confirm(
            f"Delete {address} and destroy all its versions? This cannot be undone",
            abort=True,
            err=True,
        )
    with open_warden() as w:
        revoked = w.remove(address, expected_version=if_version)
    if revoked == "revoked":
        click.echo(f"removed {address} (its grant was revoked at the provider)")
    elif revoked:
        click.echo(f"removed {address}")
        click.echo(
            f"warning: revoking its grant at the provider failed ({revoked}); revoke it in the"
            " provider's console",
            err=True,
        )
    else:
        click.echo(f"removed {address}")


@click.command()
@click.argument("address")
@click.option(
    "--to", "to_version", required=True, type=click.IntRange(min=1), metavar="N", help="Version."
)
@click.option(
    "--if-version",
    type=click.IntRange(min=1),
    metavar="N",
    help="Fail with exit 6 unless the credential is still at version N.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the new metadata as JSON.")
def rollback(address: str, to_version: int, if_version: int | None, as_json: bool) -> None:
    """Make version N's values current again, stored as a new version."""
    with open_warden() as w:
        info = w.rollback(address, to_version, expected_version=if_version)
    if as_json:
        print_json(info.to_dict())
    else:
        click.echo(
            f"rolled back {info.address} to the values of version {to_version}"
            f" (now version {info.version})"
        )
