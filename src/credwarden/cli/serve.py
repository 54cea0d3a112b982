"""`credwarden serve`: the REST API, health, metrics and the background scheduler."""

from __future__ import annotations

import os

import click

from ..errors import UsageError
from .context import prompt_secret


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8470, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Processes serving the port (each with its own connection to the store).",
)
@click.option("--no-scheduler", is_flag=True, help="Do not run background jobs on this node.")
@click.option(
    "--log-level",
    default="warning",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
@click.option(
    "--public-url",
    envvar="CREDWARDEN_PUBLIC_URL",
    metavar="URL",
    default=None,
    help="Where browsers reach this server (behind a proxy: its external https URL);"
    " OAuth redirects come to URL/oauth/callback. [default: http://HOST:PORT]",
)
@click.option(
    "--trusted-proxy",
    "trusted_proxies",
    metavar="ADDRS",
    default=None,
    help="Reverse proxies (comma-separated addresses) whose X-Forwarded-For names the client"
    " (for the audit log and the failed-authentication brake).",
)
def serve(
    host: str,
    port: int,
    workers: int,
    no_scheduler: bool,
    log_level: str,
    public_url: str | None,
    trusted_proxies: str | None,
) -> None:
    """Serve the REST API under /v1 (OpenAPI at /openapi.json), /healthz and /metrics.

    Every /v1 call needs `Authorization: Bearer TOKEN`; a token comes from
    `credwarden principal token NAME`. Several nodes may serve one PostgreSQL store:
    background jobs (OAuth refresh ahead of expiry, expiry sweeps) run once per
    interval across them.
    """
    if os.environ.get("CREDWARDEN_URL"):
        raise UsageError(
            "serve runs next to the store, not against another server",
            hint="unset CREDWARDEN_URL (and CREDWARDEN_TOKEN) to serve the local store",
        )
    from ..api.app import CALLBACK_PATH, check_public_url
    from ..api.server import default_public_url
    from ..api.server import serve as run_server
    from ..settings import is_loopback_host, redact_url
    from ..warden import Warden

    public_url = check_public_url(public_url or default_public_url(host, port))
    # jobs are audited as source "serve"
    w = Warden.open_local(source="serve", prompt=prompt_secret)
    where = redact_url(w.settings.database_url)

    def ready(url: str) -> None:
        click.echo(f"credwarden serving {url}  (API under /v1, OpenAPI /openapi.json)", err=True)
        click.echo(f"health /healthz, metrics /metrics; store {where}", err=True)
        click.echo(f"OAuth redirect URI {public_url}{CALLBACK_PATH}", err=True)
        if not any("admin" in g.actions and g.pattern == "*/*/*" for g in w.grants()):
            click.echo(
                "no admin principal yet; the first admin token (run next to the store):\n"
                "  credwarden principal add admin --type user --role admin\n"
                "  credwarden principal token admin --expires 30d",
                err=True,
            )
        if not is_loopback_host(host):
            click.echo(
                "note: listening beyond loopback: put TLS in front (a reverse proxy)", err=True
            )

    try:
        run_server(
            w,
            host=host,
            port=port,
            scheduler=not no_scheduler,
            log_level=log_level,
            on_ready=ready,
            workers=workers,
            public_url=public_url,
            trusted_proxies=trusted_proxies,
        )
    finally:
        w.close()
