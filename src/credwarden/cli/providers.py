"""The provider catalog: `providers list`, `providers show SLUG`, `providers add SLUG --discovery`.

The catalog is data, not credentials: these commands read CREDWARDEN_HOME/providers and
the built-in catalog, and never open the store or need the master key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import click

from ..errors import AlreadyExists, CredwardenError, UsageError
from ..providers.model import AUTH_MODES
from .output import print_fields, print_json, print_table

if TYPE_CHECKING:
    from ..providers import Catalog, Provider, RequestSpec

MAX_DOCUMENT_BYTES = 1024 * 1024
FETCH_TIMEOUT_S = 10.0
MAX_REDIRECTS = 5


def _home() -> str:
    from ..settings import Settings

    return Settings.from_env().home


def _catalog() -> Catalog:
    from ..providers import load_catalog

    return load_catalog(_home())


@click.group()
def providers() -> None:
    """The services credwarden knows: endpoints, scopes, key formats and live tests.

    Built-in providers come with credwarden; your own are YAML files in
    CREDWARDEN_HOME/providers/ (same schema), or imported from an OpenID Connect
    discovery document with `providers add SLUG --discovery URL`.
    """


# -- list ----------------------------------------------------------------------------------------


@providers.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.option(
    "--auth",
    "auth_mode",
    type=click.Choice(AUTH_MODES),
    help="Only providers supporting this auth mode.",
)
@click.option("--category", metavar="C", help="Only providers in this category.")
def list_(as_json: bool, auth_mode: str | None, category: str | None) -> None:
    """List the providers of the catalog (built-in and your own)."""
    chosen = [
        p
        for p in _catalog()
        if (auth_mode is None or p.supports(auth_mode))
        and (category is None or category.lower() in p.categories)
    ]
    if as_json:
        print_json(
            [
                {
                    "slug": p.slug,
                    "name": p.name,
                    "auth": list(p.auth),
                    "categories": list(p.categories),
                    "docs": p.docs,
                }
                for p in chosen
            ]
        )
        return
    if not chosen:
        click.echo("no providers match", err=True)
        return
    print_table(
        ("SLUG", "NAME", "AUTH", "CATEGORIES"),
        [(p.slug, p.name, ", ".join(p.auth), ", ".join(p.categories)) for p in chosen],
    )


# -- show ----------------------------------------------------------------------------------------


@providers.command()
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Print the catalog entry as JSON.")
def show(slug: str, as_json: bool) -> None:
    """Show everything the catalog says about a provider."""
    provider = _catalog().get(slug)
    if as_json:
        print_json(provider.raw)
        return
    _show_provider(provider)


def _yes_no(value: bool | None) -> str | None:
    return None if value is None else ("yes" if value else "no")


def _section(title: str, pairs: Sequence[tuple[str, Any]], quirks: Sequence[str] = ()) -> None:
    click.echo(f"{title}:")
    shown = [(f"  {k}", v) for k, v in pairs if v not in (None, "", [], ())]
    if shown:
        print_fields(shown)
    if quirks:
        click.echo("  quirks:")
        for quirk in quirks:
            click.echo(f"    - {quirk}")


def _kv(mapping: Mapping[str, str]) -> str:
    return " ".join(f"{k}={v}" for k, v in mapping.items())


def _show_provider(p: Provider) -> None:
    print_fields(
        [
            ("slug", p.slug),
            ("name", p.name),
            ("source", p.source),
            ("auth", ", ".join(p.auth)),
            ("categories", ", ".join(p.categories) or "-"),
            ("docs", p.docs),
        ]
    )
    if p.template_vars:
        click.echo("template vars (pass with --var NAME=VALUE):")
        for var in p.template_vars:
            extra = []
            if var.default is not None:
                extra.append(f"default {var.default}")
            if var.example is not None:
                extra.append(f"e.g. {var.example}")
            if var.pattern is not None:
                extra.append(f"pattern {var.pattern}")
            tail = f" ({'; '.join(extra)})" if extra else ""
            click.echo(f"  {var.name}: {var.description}{tail}")
    if p.oauth2 is not None:
        o = p.oauth2
        r = o.refresh
        refresh = ", ".join(
            part
            for part in (
                f"issued {r.issued}" if r.issued else "",
                f"rotates {_yes_no(r.rotates)}" if r.rotates is not None else "",
                f"expires {r.expires if isinstance(r.expires, str) else _yes_no(r.expires)}"
                if r.expires is not None
                else "",
                f"idle expiry {r.idle_expiry}" if r.idle_expiry else "",
            )
            if part
        )
        _section(
            "oauth2",
            [
                ("issuer", o.issuer),
                ("authorization url", o.authorization_url),
                ("token url", o.token_url),
                ("refresh url", o.refresh_url),
                ("revocation url", o.revocation_url),
                ("userinfo url", o.userinfo_url),
                ("device url", o.device_authorization_url),
                ("introspection url", o.introspection_url),
                ("default scopes", " ".join(o.scopes_default) or "(none)"),
                ("scope separator", repr(o.scope_separator)),
                ("offline scope", o.offline_scope),
                ("pkce", o.pkce or "not documented"),
                ("client auth", o.token_auth_method),
                ("token request", o.token_content_type),
                ("authorize params", _kv(o.authorize_params)),
                ("token params", _kv(o.token_params)),
                ("refresh", refresh or "not documented"),
                ("access token ttl", f"{o.access_token_ttl} s" if o.access_token_ttl else None),
            ],
            o.quirks,
        )
    if p.api_key is not None:
        k = p.api_key
        _section(
            "api_key",
            [
                ("label", k.label),
                ("pattern", k.pattern),
                ("header", k.header),
                ("scheme", k.scheme),
                ("value", k.value),
                ("query param", k.query_param),
                ("basic username", k.basic_username),
                ("basic password", k.basic_password),
                ("env var", k.env_var),
                (
                    "extra fields",
                    ", ".join(
                        f"{f.name} ({f.label}{'' if f.secret else ', not secret'})"
                        for f in k.extra_fields
                    ),
                ),
            ],
            k.quirks,
        )
    if p.basic is not None:
        b = p.basic
        _section(
            "basic",
            [
                ("username", b.username_label),
                ("password", b.password_label),
                ("username pattern", b.username_pattern),
                ("password pattern", b.password_pattern),
                ("username env var", b.username_env_var),
                ("password env var", b.password_env_var),
            ],
            b.quirks,
        )
    if p.service_account is not None:
        s = p.service_account
        _section(
            "service_account",
            [
                ("format", s.format),
                ("token url", s.token_url),
                ("audience", s.audience),
                ("default scopes", " ".join(s.scopes_default)),
            ],
            s.quirks,
        )
    if p.tests:
        click.echo("live test (credwarden test):")
        for spec in p.tests:
            click.echo(f"  {_request_line(spec)}")
    else:
        click.echo("live test: none known")
    if p.revoke is not None:
        click.echo(f"revoke: {_request_line(p.revoke)}")


def _request_line(spec: RequestSpec) -> str:
    modes = f"[{', '.join(spec.modes)}] " if spec.modes else ""
    line = f"{modes}{spec.method} {spec.url}"
    if spec.params:
        line += " ?" + "&".join(f"{k}={v}" for k, v in spec.params.items())
    if spec.headers:
        line += f" (headers: {', '.join(spec.headers)})"
    line += f" -> {'/'.join(str(s) for s in spec.expect_status)}"
    if spec.expect_json:
        line += f" with {json.dumps(dict(spec.expect_json), separators=(',', ':'))}"
    return line


# -- add -----------------------------------------------------------------------------------------


@providers.command()
@click.argument("slug")
@click.option(
    "--discovery",
    "url",
    required=True,
    metavar="URL",
    help="The discovery document, e.g. https://id.example.com/.well-known/openid-configuration"
    " (OpenID Connect) or .../.well-known/oauth-authorization-server (RFC 8414).",
)
@click.option("--name", metavar="NAME", help="Display name (default: the issuer's host).")
@click.option("--replace", is_flag=True, help="Replace an existing provider with this slug.")
@click.option(
    "--ca-bundle",
    type=click.Path(exists=True, dir_okay=False),
    metavar="PATH",
    help="PEM file of the CA certificates to trust (a private CA).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the saved entry as JSON.")
def add(
    slug: str, url: str, name: str | None, replace: bool, ca_bundle: str | None, as_json: bool
) -> None:
    """Add provider SLUG from its OpenID Connect / OAuth server discovery document.

    The entry is saved as CREDWARDEN_HOME/providers/SLUG.yaml; edit it to add
    quirks, a test request or template vars. Exit 6 if SLUG exists (use --replace).

    \b
    Example:
      credwarden providers add acme-id \\
        --discovery https://id.acme.com/.well-known/openid-configuration
    """
    from ..providers import provider_from_discovery, save_user_provider
    from ..providers._validate import check_slug, check_url

    check_slug(slug)
    problem = check_url(url)
    if problem is not None:
        raise UsageError(f"the discovery URL {problem}", hint="give the document's full URL")
    home = _home()
    if not replace:
        catalog = _catalog()
        if slug in catalog:
            existing = catalog.get(slug)
            where = (
                "is built in" if existing.source == "built-in" else f"exists in {existing.source}"
            )
            raise AlreadyExists(
                f"provider {slug!r} {where}",
                hint="pass --replace to replace it (a user file overrides a built-in provider),"
                " or choose another slug",
            )
    document = fetch_json(url, ca_bundle=ca_bundle)
    _check_issuer(url, document)
    entry = provider_from_discovery(slug, document, name=name)
    path = save_user_provider(home, slug, entry, replace=replace)
    if as_json:
        print_json({"slug": slug, "path": path, "entry": entry})
        return
    oauth2 = entry.get("oauth2", {})
    click.echo(f"saved provider {slug} to {path}")
    print_fields(
        [
            ("  name", entry["name"]),
            ("  auth", ", ".join(entry["auth"])),
            ("  issuer", oauth2.get("issuer")),
            ("  authorization url", oauth2.get("authorization_url")),
            ("  token url", oauth2.get("token_url")),
            ("  default scopes", " ".join(oauth2.get("scopes_default", ())) or "(none)"),
            ("  pkce", oauth2.get("pkce", "not documented")),
            ("  client auth", oauth2.get("token_auth_method")),
        ]
    )
    click.echo(f"see it all with: credwarden providers show {slug}")


def _check_issuer(url: str, document: object) -> None:
    """OpenID Connect Discovery §4.3: the issuer must be the URL the document came from."""
    if not isinstance(document, Mapping):
        return
    issuer = document.get("issuer")
    if isinstance(issuer, str) and issuer and not url.startswith(issuer.rstrip("/") + "/"):
        click.echo(
            f"warning: the document's issuer {issuer[:100]!r} is not where it was fetched from;"
            " check that this is the server you mean",
            err=True,
        )


def fetch_json(url: str, *, ca_bundle: str | None = None) -> Any:
    """GET a JSON document: 10 s timeout, at most 1 MiB, redirects only within the same host."""
    import ssl

    import httpx

    verify: bool | ssl.SSLContext = True
    if ca_bundle is not None:
        from ..files import read_user_text

        pem = read_user_text(ca_bundle, limit=4 * 1024 * 1024, what="--ca-bundle")
        try:
            verify = ssl.create_default_context(cadata=pem)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise UsageError(
                f"cannot use {ca_bundle} as a CA bundle: {exc}",
                hint="give a PEM file of CA certificates",
            ) from None
    origin = urlsplit(url)
    current = url
    with httpx.Client(
        timeout=FETCH_TIMEOUT_S,
        verify=verify,
        follow_redirects=False,
        headers={"Accept": "application/json"},
    ) as http:
        for _ in range(MAX_REDIRECTS + 1):
            try:
                with http.stream("GET", current) as response:
                    if response.is_redirect:
                        target = urljoin(current, response.headers.get("location", ""))
                        _check_redirect(origin.scheme, origin.netloc, target)
                        current = target
                        continue
                    body = _read_limited(response, current)
                    status = response.status_code
                    content_type = response.headers.get("content-type", "")
            except httpx.TimeoutException:
                raise CredwardenError(
                    f"{_host(current)} did not answer within {FETCH_TIMEOUT_S:g} s",
                    hint="check the URL and the network",
                ) from None
            except httpx.HTTPError as exc:
                raise CredwardenError(
                    f"cannot fetch {_short(current)}: {type(exc).__name__}: {_reason(exc)}",
                    hint="check the URL and the network; for a private CA pass --ca-bundle",
                ) from None
            return _parse_document(current, status, content_type, body)
    raise CredwardenError(
        f"too many redirects from {_short(url)}", hint="give the document's final URL"
    )


def _check_redirect(scheme: str, netloc: str, target: str) -> None:
    parts = urlsplit(target)
    same_host = parts.netloc == netloc and parts.scheme in (scheme, "https")
    if not same_host:
        raise CredwardenError(
            f"the server redirected to another host ({_short(target)})",
            hint="redirects are followed only within the same host; give the final URL"
            " if you trust it",
        )


def _read_limited(response: Any, url: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_DOCUMENT_BYTES:
            raise CredwardenError(
                f"the document at {_short(url)} is larger than 1 MiB",
                hint="a discovery document is a few kilobytes; check the URL",
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_document(url: str, status: int, content_type: str, body: bytes) -> Any:
    hint = (
        "give the discovery document's URL: ISSUER/.well-known/openid-configuration"
        " or ISSUER/.well-known/oauth-authorization-server"
    )
    if status != 200:
        raise CredwardenError(f"{_short(url)} answered HTTP {status}", hint=hint)
    media = content_type.split(";")[0].strip().lower()
    head = body.lstrip()[:1]
    if media in ("text/html", "application/xhtml+xml") or head == b"<":
        raise CredwardenError(
            f"{_short(url)} answered with an HTML page, not a JSON discovery document", hint=hint
        )
    try:
        return json.loads(body)
    except ValueError:
        shown = media or "no content type"
        raise CredwardenError(f"{_short(url)} did not answer JSON ({shown})", hint=hint) from None


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:160] if text else "no details"


def _host(url: str) -> str:
    return urlsplit(url).netloc or url[:60]


def _short(url: str) -> str:
    return url if len(url) <= 120 else url[:119] + "…"
