"""`credwarden test ADDRESS`: a live check of a credential against its provider."""

from __future__ import annotations

import click

from ..lifecycle.livetest import Outcome
from .context import open_warden
from .oauth import _pairs


@click.command("test")
@click.argument("address")
@click.option(
    "--var",
    "template_vars",
    multiple=True,
    metavar="NAME=VALUE",
    callback=_pairs,
    help="A template var of the test URL (repeatable), e.g. shop=acme; by default taken from"
    " the credential's tag of that name.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=15.0,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the provider.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as a JSON object.")
def test(address: str, template_vars: list[tuple[str, str]], timeout: float, as_json: bool) -> None:
    """Check ADDRESS live against its provider.

    An oauth2 connection gets a valid token (refreshed if needed) and calls the
    provider's test request; an api_key or basic credential calls it with its stored
    values. Exit 0 ok, 7 the provider rejected the credential (401/403), 1 other
    failures (network errors, unexpected answers, nothing to test).

    \b
    Example:
      credwarden test prod/github/main
      ok  prod/github/main  GET https://api.github.com/user -> 200 (143 ms)
    """
    with open_warden() as w:
        outcome = w.test(address, template_vars=dict(template_vars), timeout=timeout)
    if as_json:
        from .output import print_json

        print_json(outcome.to_dict())
    else:
        _print(outcome)
    click.get_current_context().exit(outcome.exit_code)


def _print(o: Outcome) -> None:
    label = {"ok": "ok", "no_test": "ok"}.get(o.result, "FAILED")
    if o.method is None:
        click.echo(f"{label}  {o.address}  {o.message}")
        return
    line = f"{label}  {o.address}  {o.method} {o.url}"
    if o.status is not None:
        line += f" -> {o.status} ({o.elapsed_ms} ms)"
    if o.result != "ok":
        line += f": {o.message}"
    click.echo(line)
