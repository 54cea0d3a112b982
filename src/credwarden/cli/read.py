"""The read path: `get` and `headers`. Imports stay minimal here: `get` must start fast."""

from __future__ import annotations

import click

from .context import open_warden


@click.command()
@click.argument("ref", metavar="ADDRESS[#FIELD]")
@click.option("--json", "as_json", is_flag=True, help="Print every field as a JSON object.")
@click.option("-n", "--no-newline", is_flag=True, help="Do not print a newline after the value.")
def get(ref: str, as_json: bool, no_newline: bool) -> None:
    """Print a secret value and nothing else (the kind's main field unless #FIELD is given).

    Every read is audited before the value is printed.
    """
    with open_warden() as w:
        if as_json:
            import json

            if "#" in ref:
                value = w.get(ref).reveal()
                click.echo(json.dumps({ref.split("#", 1)[1]: value}))
            else:
                click.echo(json.dumps(w.read(ref).reveal(), indent=2))
            return
        value = w.get(ref).reveal()
    click.echo(value, nl=not no_newline)


@click.command()
@click.argument("address")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def headers(address: str, as_json: bool) -> None:
    """Print the HTTP headers that authenticate with ADDRESS (`Name: value` lines)."""
    with open_warden() as w:
        values = {k: v.reveal() for k, v in w.headers(address).items()}
    if as_json:
        import json

        click.echo(json.dumps(values, indent=2))
    else:
        for name, value in values.items():
            click.echo(f"{name}: {value}")
