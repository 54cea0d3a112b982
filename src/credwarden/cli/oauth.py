"""OAuth from the command line: `connect` (make or repair a connection) and `token` (use one).

`token` is on the hot path of scripts: it imports neither Rich nor the provider catalog;
httpx and authlib load only when a refresh is due (the facade imports them lazily).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from .context import open_warden

GRANT_CHOICES = ("authorization_code", "client_credentials", "device_code")


def _pairs(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for raw in values:
        name, eq, value = raw.partition("=")
        if not eq or not name.strip():
            raise click.BadParameter(f"expected NAME=VALUE, got {raw[:60]!r}", ctx=ctx, param=param)
        out.append((name.strip(), value))
    return out


def _scopes(values: tuple[str, ...]) -> list[str]:
    """Repeated --scope options; each may also hold several scopes separated by spaces."""
    return [s for v in values for s in v.split()]


# -- connect -------------------------------------------------------------------------------------


@click.command()
@click.argument("address")
@click.option(
    "--provider", "provider", required=True, metavar="SLUG", help="The provider, e.g. google."
)
@click.option(
    "--client",
    "client",
    required=True,
    metavar="CLIENT_ADDRESS",
    help="The oauth2_client credential (client id and secret) of your app.",
)
@click.option(
    "--scope",
    "scope_opts",
    multiple=True,
    metavar="S",
    help="A scope to request (repeatable); default: the provider's default scopes.",
)
@click.option(
    "--no-browser",
    is_flag=True,
    help="Do not open a browser: print the authorization URL alone on one line of stdout.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port of the redirect listener http://127.0.0.1:PORT/callback. 0 picks a free port,"
    " but most providers require the exact redirect URI registered for the app:"
    " pass the port you registered.",
)
@click.option(
    "--grant",
    type=click.Choice(GRANT_CHOICES),
    default=None,
    help="OAuth grant [default: authorization_code].",
)
@click.option("--device", is_flag=True, help="Same as --grant device_code (RFC 8628).")
@click.option(
    "--var",
    "template_vars",
    multiple=True,
    metavar="NAME=VALUE",
    callback=_pairs,
    help="A template var of the provider's URLs (repeatable), e.g. shop=acme or tenant=contoso.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=300.0,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for the authorization.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the connection's metadata as JSON.")
def connect(
    address: str,
    provider: str,
    client: str,
    scope_opts: tuple[str, ...],
    no_browser: bool,
    port: int,
    grant: str | None,
    device: bool,
    template_vars: list[tuple[str, str]],
    timeout: float,
    as_json: bool,
) -> None:
    """Connect ADDRESS to an account at a provider (OAuth), or repair it in place.

    The default grant is the authorization code with PKCE: credwarden opens the
    authorization page in a browser and waits for the redirect on
    http://127.0.0.1:PORT/callback. With --no-browser the URL is printed alone on one
    line of stdout, to open anywhere. Nothing is stored unless the provider issues
    tokens; connecting an existing connection writes a new version in place.

    With CREDWARDEN_URL set, the server runs the flow: the redirect goes to its
    public URL (URL/oauth/callback, see `serve --public-url`) and this command waits
    until the server has stored the connection (--port is unused).

    \b
    Examples:
      credwarden connect prod/google/reports --provider google \\
          --client prod/google/app --port 8765
      credwarden connect prod/github/bot --provider github --client prod/github/app --device
      credwarden connect prod/graph/daemon --provider microsoft --client prod/graph/app \\
          --grant client_credentials --var tenant=contoso.onmicrosoft.com \\
          --scope https://graph.microsoft.com/.default
    """
    if device:
        if grant not in (None, "device_code"):
            raise click.UsageError("--device means --grant device_code; give only one of them")
        grant = "device_code"
    grant = grant or "authorization_code"
    tvars = dict(template_vars)

    def open_url(url: str) -> None:
        if no_browser:
            sys.stdout.write(url + "\n")
            sys.stdout.flush()
            click.echo(
                f"Open the URL above in a browser and approve; waiting for the redirect to"
                f" {_redirect_uri(url) or 'http://127.0.0.1:PORT/callback'} ...",
                err=True,
            )
            return
        import contextlib
        import webbrowser

        with contextlib.suppress(webbrowser.Error):
            webbrowser.open(url)
        click.echo(f"If the browser did not open, visit: {url}", err=True)
        sys.stderr.flush()

    def show_device(answer: dict[str, Any]) -> None:
        uri = answer.get("verification_uri") or answer.get("verification_url") or "?"
        code = answer.get("user_code") or "?"
        click.echo(f"Visit {uri} and enter {code}", err=True)
        complete = answer.get("verification_uri_complete")
        if complete:
            click.echo(f"(or open {complete})", err=True)
        click.echo("Waiting for the approval ...", err=True)
        sys.stderr.flush()

    try:
        with open_warden() as w:
            from ..remote import RemoteWarden

            if not isinstance(w, RemoteWarden):  # else the server checks them, in its catalog
                _check_vars(w.settings.home, provider, tvars)
            info = w.connect(
                address,
                provider=provider,
                client=client,
                scopes=_scopes(scope_opts),
                grant=grant,
                port=port,
                open_url=open_url,
                show_device=show_device,
                template_vars=tvars,
                timeout=timeout,
            )
    except KeyboardInterrupt:
        click.echo("\ninterrupted: nothing was stored", err=True)
        raise SystemExit(130) from None
    if as_json:
        from .output import print_json

        print_json(info.to_dict())
        return
    scope = info.fields.get("scope") or "(none granted)"
    expires = info.fields.get("expires_at") or "never (no expiry given)"
    click.echo(
        f"connected {info.address} (provider {info.provider}, scopes {scope}, expires {expires})"
    )


def _redirect_uri(url: str) -> str | None:
    from urllib.parse import parse_qs, urlsplit

    values = parse_qs(urlsplit(url).query).get("redirect_uri")
    return values[0] if values else None


def _check_vars(home: str, slug: str, tvars: dict[str, str]) -> None:
    """Unknown template var names are a usage error (the provider would silently ignore them)."""
    if not tvars:
        return
    from ..errors import UsageError
    from ..providers import load_catalog

    known = [v.name for v in load_catalog(home).get(slug).template_vars]
    unknown = sorted(set(tvars) - set(known))
    if unknown:
        raise UsageError(
            f"provider {slug} has no template var {', '.join(unknown)}",
            hint=f"its template vars: {', '.join(known) or 'none'}",
        )


# -- token ---------------------------------------------------------------------------------------


def _warn_broad(scopes: list[str], subject: str | None) -> None:
    """Least privilege: say so when a token is asked for broad powers."""
    from ..kinds.google import BROAD_SCOPES

    for scope in scopes:
        if scope in BROAD_SCOPES:
            click.echo(
                f"warning: {scope} grants access to every Google Cloud API the service"
                " account may use; prefer narrower scopes",
                err=True,
            )
    if subject:
        click.echo(f"warning: domain-wide delegation: the token acts as {subject}", err=True)


@click.command()
@click.argument("address")
@click.option(
    "--scope",
    "scope_opts",
    multiple=True,
    metavar="S",
    help="A scope the token must carry (repeatable): for a service account, what it is"
    " minted for; an oauth2 connection not granted it is a usage error (exit 2).",
)
@click.option(
    "--subject",
    metavar="EMAIL",
    help="Google service accounts: act as this user (domain-wide delegation).",
)
@click.option(
    "--min-ttl",
    type=click.IntRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Refresh first unless the token stays valid this long [default: 60].",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print access_token, expires_at and token_type."
)
def token(
    address: str,
    scope_opts: tuple[str, ...],
    subject: str | None,
    min_ttl: int | None,
    as_json: bool,
) -> None:
    """Print a valid access token for ADDRESS and nothing else, refreshing it if needed.

    \b
    Example:
      curl -H "Authorization: Bearer $(credwarden token prod/google/reports)" ...
    """
    wanted = _scopes(scope_opts)
    with open_warden() as w:
        minted = False
        if wanted:
            info = w.describe(address)
            granted = info.fields.get("scope")
            minted = info.kind != "oauth2"
            if minted:
                _warn_broad(wanted, subject)
            elif granted:
                have = set(granted.replace(",", " ").split())
                missing = [s for s in wanted if s not in have]
                if missing:
                    from ..errors import UsageError

                    raise UsageError(
                        f"{info.address} was not granted {' '.join(missing)} (granted: {granted})",
                        hint=f"reconnect it with the scopes needed: credwarden connect"
                        f" {info.address} --provider {info.provider or '...'} --client ..."
                        + "".join(f" --scope {s}" for s in sorted(have | set(missing))),
                    )
        secret = w.access_token(
            address,
            scopes=wanted if minted else (),
            subject=subject,
            leeway=60 if min_ttl is None else min_ttl,
        )
        value = secret.reveal()
        if as_json:
            fields = w.describe(address).fields
    if as_json:
        import json

        click.echo(
            json.dumps(
                {
                    "access_token": value,
                    "expires_at": fields.get("expires_at"),
                    "token_type": fields.get("token_type") or "Bearer",
                },
                indent=2,
            )
        )
        return
    click.echo(value)
