"""The click application: a group whose commands load only when invoked or listed."""

from __future__ import annotations

import importlib

import click

# name -> "module:attribute"; a module is imported only when its command runs or --help lists it.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": (
        "credwarden.cli.setup",
        "init",
    ),
    "environments": ("credwarden.cli.setup", "environments"),
    "add": ("credwarden.cli.creds", "add"),
    "get": ("credwarden.cli.read", "get"),
    "headers": ("credwarden.cli.read", "headers"),
    "show": ("credwarden.cli.creds", "show"),
    "list": ("credwarden.cli.creds", "list_"),
    "update": ("credwarden.cli.creds", "update"),
    "rm": ("credwarden.cli.creds", "rm"),
    "history": ("credwarden.cli.creds", "history"),
    "rollback": ("credwarden.cli.creds", "rollback"),
    "import": ("credwarden.cli.envfiles", "import_"),
    "export": ("credwarden.cli.envfiles", "export"),
    "run": ("credwarden.cli.envfiles", "run"),
    "audit": ("credwarden.cli.audit", "audit"),
    "principal": ("credwarden.cli.access", "principal"),
    "grant": ("credwarden.cli.access", "grant"),
    "grants": ("credwarden.cli.access", "grants"),
    "revoke-grant": ("credwarden.cli.access", "revoke_grant"),
    "key": ("credwarden.cli.setup", "key"),
    "report": ("credwarden.cli.reports", "report"),
    "providers": ("credwarden.cli.providers", "providers"),
    "connect": ("credwarden.cli.oauth", "connect"),
    "token": ("credwarden.cli.oauth", "token"),
    "test": ("credwarden.cli.checks", "test"),
    "serve": ("credwarden.cli.serve", "serve"),
}

SUMMARIES: dict[str, str] = {
    "init": "Create the store and its master key (idempotent).",
    "environments": "List, add, protect or unprotect environments (dev, staging, prod).",
    "add": "Store a new credential (secrets prompted with hidden input).",
    "get": "Print a secret value and nothing else.",
    "headers": "Print the HTTP auth headers of a credential.",
    "show": "Show metadata, health and versions (secrets masked).",
    "list": "List credentials.",
    "update": "Change fields (a new version) or metadata.",
    "rm": "Delete a credential and shred its versions.",
    "history": "List a credential's versions (no values).",
    "rollback": "Make an old version current again (as a new version).",
    "import": "Import a .env or JSON file as secrets.",
    "export": "Export an environment's variables as dotenv or JSON.",
    "run": "Run a command with credentials as environment variables.",
    "audit": "Query the audit log; `audit verify` checks the chain.",
    "principal": "Principals and API tokens: add, list, show, rm, token, tokens, revoke-token.",
    "grant": "Allow a principal actions (or a role) on an address pattern.",
    "grants": "List grants (--principal P for one principal's).",
    "revoke-grant": "Take back a grant, or some of its actions.",
    "key": "Key management: `key rotate` adds a KEK term and re-wraps data keys.",
    "report": "Reports: expiring, rotation (overdue), unused, permissions (least privilege).",
    "providers": "The provider catalog: `providers list`, `show SLUG`, `add SLUG --discovery URL`.",
    "connect": "Connect an account over OAuth (browser, --no-browser or --device).",
    "token": "Print a valid access token, refreshing it if needed.",
    "test": "Check a credential live against its provider.",
    "serve": "Serve the REST API, health, metrics and background jobs.",
}


class LazyGroup(click.Group):
    """Resolve subcommands on demand so `credwarden get` imports only what `get` needs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module = importlib.import_module(target[0])
        cmd = getattr(module, target[1])
        assert isinstance(cmd, click.Command)
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SUMMARIES.get(name, "")) for name in COMMANDS]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="credwarden", prog_name="credwarden")
def cli() -> None:
    """credwarden: credentials for workflow automations, encrypted, refreshed and audited.

    Addresses are environment/service/name, e.g. prod/stripe/billing; a field is
    prod/stripe/billing#api_key. Exit codes: 0 ok, 1 error, 2 usage, 3 master key,
    4 not found, 5 permission denied, 6 conflict, 7 credential invalid, 8 audit failed.
    """
