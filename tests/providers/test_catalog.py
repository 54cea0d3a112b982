"""The provider catalog: the built-in data, user provider files, discovery, URL templates."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

import credwarden.providers as providers_pkg
from credwarden.errors import AlreadyExists, NotFound, ValidationError
from credwarden.providers import (
    Catalog,
    OAuth2Spec,
    Provider,
    key_matches,
    load_catalog,
    provider_from_discovery,
    save_user_provider,
)
from credwarden.secret import Secret

PKG_DIR = Path(providers_pkg.__file__).parent

REQUIRED = {
    "google",
    "microsoft",
    "github",
    "gitlab",
    "slack",
    "salesforce",
    "hubspot",
    "notion",
    "dropbox",
    "box",
    "zoom",
    "atlassian",
    "asana",
    "linear",
    "airtable",
    "shopify",
    "stripe",
    "openai",
    "anthropic",
    "twilio",
    "sendgrid",
    "mailchimp",
    "discord",
    "xero",
    "quickbooks",
    "docusign",
    "zendesk",
    "intercom",
    "pipedrive",
    "calendly",
    "typeform",
    "figma",
    "monday",
    "clickup",
    "datadog",
    "pagerduty",
}

# Fake keys in each service's documented format: repeated characters or EXAMPLE, built by
# concatenation so that no realistic-looking secret appears in this file.
X = "x"
Z = "0"
KEY_EXAMPLES: list[tuple[str, str, str, str]] = [
    # (provider, field, matches, does not match)
    ("github", "api_key", "ghp_" + "EXAMPLE" + X * 29, "ghp_" + X * 10),
    ("github", "api_key", "github_pat_" + X * 82, "github_pat_" + X * 20),
    ("gitlab", "api_key", "glpat-" + "EXAMPLE" + X * 13, "glpat-" + X * 5),
    ("slack", "api_key", "xoxb-" + "1" * 12 + "-" + "1" * 12 + "-" + X * 24, "xoxz-" + X * 30),
    ("hubspot", "api_key", "pat-na1-" + "-".join(Z * n for n in (8, 4, 4, 4, 12)), "pat-" + X * 20),
    ("notion", "api_key", "ntn_" + "1" * 11 + X * 35, "ntn_" + X * 10),
    ("notion", "api_key", "secret_" + X * 43, "secret_" + X * 42),
    ("trello", "api_key", Z * 32, Z * 31),
    ("trello", "user_token", "ATTA" + X * 64, "ATTB" + X * 64),
    ("linear", "api_key", "lin_api_" + "EXAMPLE" + X * 33, "lin_api_" + X * 39),
    ("airtable", "api_key", "pat" + X * 14 + "." + Z * 64, "pat" + X * 14 + Z * 64),
    ("shopify", "api_key", "shpat_" + Z * 32, "shpat_" + "g" * 32),
    ("stripe", "api_key", "sk_test_" + "EXAMPLE" + X * 17, "pk_test_" + X * 24),
    ("stripe", "api_key", "rk_live_" + X * 24, "sk_test_" + X * 4),
    ("square", "api_key", "EAAA" + X * 60, "EAAB" + X * 60),
    ("openai", "api_key", "sk-proj-" + "EXAMPLE" + X * 40, "pk-proj-" + X * 40),
    ("anthropic", "api_key", "sk-ant-api03-" + X * 93 + "AA", "sk-ant-api03-" + X * 20),
    ("anthropic", "api_key", "sk-ant-admin01-" + X * 93 + "AA", "sk-ant-api04-" + X * 93 + "AA"),
    ("cohere", "api_key", "EXAMPLE" + X * 33, X * 39),
    ("groq", "api_key", "gsk_" + X * 52, "gsk_" + X * 51),
    ("replicate", "api_key", "r8_" + X * 37, "r9_" + X * 37),
    ("perplexity", "api_key", "pplx-" + X * 48, "pplx-" + X * 47),
    ("gemini", "api_key", "AIza" + X * 35, "AIzb" + X * 35),
    ("huggingface", "api_key", "hf_" + X * 34, "hf_" + X * 33),
    ("twilio", "username", "AC" + Z * 32, "AC" + "g" * 32),
    ("twilio", "password", Z * 32, Z * 31),
    ("sendgrid", "api_key", "SG." + X * 22 + "." + X * 43, "SG." + X * 22),
    ("mailchimp", "api_key", Z * 32 + "-us6", Z * 32),
    ("mailgun", "api_key", "key-" + Z * 32, "key-" + Z * 31),
    ("postmark", "api_key", "-".join(Z * n for n in (8, 4, 4, 4, 12)), "not-a-token"),
    ("resend", "api_key", "re_" + "EXAMPLE" + X * 17, "re-" + X * 24),
    ("brevo", "api_key", "xkeysib-" + Z * 64 + "-" + X * 16, "xkeysib-" + Z * 64),
    ("telegram", "api_key", "123456789:A" + X * 34, "123456789:B" + X * 34),
    ("zendesk", "password", X * 40, X * 39),
    ("atlassian", "password", "ATATT3" + X * 186, "ATATT3" + X * 10),
    ("pipedrive", "api_key", Z * 40, Z * 39),
    ("calendly", "api_key", "eyJ" + X * 10 + "." + X * 10 + "." + X * 10, "not.a.jwt"),
    ("typeform", "api_key", "tfp_" + X * 59, "tfp_" + X * 10),
    ("figma", "api_key", "figd_" + X * 40, "figx_" + X * 40),
    ("monday", "api_key", "eyJ" + X * 10 + "." + X * 10 + "." + X * 10, "EXAMPLE"),
    ("clickup", "api_key", "pk_" + "1" * 8 + "_" + "X" * 32, "pk_" + "1" * 8 + "_" + X * 32),
    ("datadog", "api_key", Z * 32, Z * 40),
    ("datadog", "application_key", Z * 40, Z * 32),
    ("pagerduty", "api_key", "EXAMPLE" + X * 13, X * 21),
    ("sentry", "api_key", "sntryu_" + Z * 64, "sntryu_" + Z * 10),
    ("x", "api_key", "A" * 22 + X * 90, "B" * 22 + X * 90),
    ("okta", "api_key", "00" + X * 40, "01" + X * 40),
    ("digitalocean", "api_key", "dop_v1_" + Z * 64, "dop_v2_" + Z * 64),
    ("heroku", "api_key", "HRKU-AA" + X * 58, "HRKU-" + X * 58),
    ("databricks", "api_key", "dapi" + Z * 32, "dapi" + "g" * 32),
    ("npm", "api_key", "npm_" + X * 36, "npm_" + X * 35),
    ("pypi", "api_key", "pypi-AgEIcHlwaS5vcmc" + X * 60, "pypi-" + X * 60),
    ("postman", "api_key", "PMAK-" + Z * 24 + "-" + Z * 34, "PMAK-" + Z * 24),
    ("pulumi", "api_key", "pul-" + Z * 40, "pul-" + "g" * 40),
    ("algolia", "api_key", Z * 32, "g" * 32),
    ("algolia", "application_id", "EXAMPLE123", "example123"),
    ("supabase", "api_key", "sbp_" + Z * 40, "sbp_" + Z * 39),
]


@pytest.fixture(scope="module")
def builtin() -> Catalog:
    return load_catalog(os.devnull + "-no-home")


@pytest.fixture(scope="module")
def raw_catalog() -> dict[str, Any]:
    with open(PKG_DIR / "catalog.yaml", encoding="utf-8") as f:
        data: dict[str, Any] = yaml.safe_load(f)
    return data


def write_provider(home: Path, filename: str, text: str) -> Path:
    directory = home / "providers"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / filename
    path.write_text(text, encoding="utf-8")
    return path


# -- the built-in catalog ---------------------------------------------------------------------


def test_builtin_catalog_validates_against_the_schema(raw_catalog: dict[str, Any]) -> None:
    schema = json.loads((PKG_DIR / "schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(raw_catalog))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]


def test_catalog_is_large_and_has_the_named_services(builtin: Catalog) -> None:
    assert len(builtin) >= 60
    assert set(builtin.slugs()) >= REQUIRED, sorted(REQUIRED - set(builtin.slugs()))
    assert [p.slug for p in builtin.list()] == sorted(builtin.slugs())


def _urls(node: object, key: str | None = None) -> list[str]:
    if isinstance(node, str):
        url_key = key in ("docs", "issuer", "url") or (key or "").endswith("_url")
        return [node] if url_key or node.startswith(("http://", "https://")) else []
    if isinstance(node, dict):
        return [u for k, v in node.items() for u in _urls(v, str(k))]
    if isinstance(node, list):
        return [u for v in node for u in _urls(v, key)]
    return []


def test_every_builtin_url_is_https(raw_catalog: dict[str, Any]) -> None:
    urls = _urls(raw_catalog)
    assert len(urls) > 300
    bad = [u for u in urls if not u.startswith("https://")]
    assert not bad


def test_every_provider_has_docs_and_auth(builtin: Catalog) -> None:
    for provider in builtin:
        assert provider.docs.startswith("https://"), provider.slug
        assert provider.auth, provider.slug
        assert provider.name
        if provider.supports("oauth2"):
            assert provider.oauth2 is not None and provider.oauth2.authorization_url
        if provider.supports("api_key"):
            assert provider.api_key is not None


def test_template_vars_have_usable_examples(builtin: Catalog) -> None:
    for provider in builtin:
        for var in provider.template_vars:
            sample = var.default or var.example
            assert sample, f"{provider.slug}.{var.name} needs a default or an example"
            assert var.pattern is None or re.fullmatch(var.pattern, sample), (provider.slug, var)


def _sample_values(provider: Provider) -> dict[str, str]:
    return {v.name: v.default or v.example or "" for v in provider.template_vars}


def test_every_url_template_renders(builtin: Catalog) -> None:
    for provider in builtin:
        values = _sample_values(provider)
        specs = [provider.oauth2, provider.service_account]
        for spec in specs:
            if spec is None:
                continue
            for name, value in spec._asdict().items():
                if (name.endswith("_url") or name == "issuer") and isinstance(value, str):
                    rendered = provider.render_url(value, **values)
                    assert "{" not in rendered and rendered.startswith("https://")


def test_every_test_and_revoke_request_renders(builtin: Catalog) -> None:
    secrets: dict[str, str | Secret] = {
        "access_token": "at-EXAMPLE",
        "api_key": "key-EXAMPLE",
        "refresh_token": "rt-EXAMPLE",
        "username": "user@example.com",
        "password": Secret("pw-EXAMPLE"),
        "client_id": "client-EXAMPLE",
        "client_secret": "secret-EXAMPLE",
    }
    tested = 0
    for provider in builtin:
        extra = {
            f.name: "EXAMPLE" for f in (provider.api_key.extra_fields if provider.api_key else ())
        }
        for spec in [*provider.tests, *([provider.revoke] if provider.revoke else [])]:
            request = provider.build_request(spec, {**secrets, **extra}, _sample_values(provider))
            assert request.url.startswith("https://") and "{" not in request.url
            assert all("{" not in h or "query" in h for h in request.headers.values())
            assert request.expect_status
            tested += 1
    assert tested >= 80


def test_most_providers_have_a_test_request(builtin: Catalog) -> None:
    with_test = [p for p in builtin if p.tests]
    assert len(with_test) >= len(builtin) - 6
    for provider in with_test:
        for mode in provider.auth:
            spec = provider.test_for(mode)
            if spec is not None:
                assert spec.applies_to(mode)


def _oauth2(catalog: Catalog, slug: str) -> OAuth2Spec:
    spec = catalog.get(slug).oauth2
    assert spec is not None, slug
    return spec


def test_documented_behaviour_of_well_known_providers(builtin: Catalog) -> None:
    google = _oauth2(builtin, "google")
    assert google.authorize_params == {"access_type": "offline", "prompt": "consent"}
    assert google.scope_string() == "openid email profile"
    microsoft = _oauth2(builtin, "microsoft")
    assert microsoft.offline_scope == "offline_access" and "{tenant}" in microsoft.token_url
    assert _oauth2(builtin, "xero").refresh.rotates is True
    assert _oauth2(builtin, "quickbooks").refresh.rotates is True
    assert _oauth2(builtin, "atlassian").refresh.rotates is True
    assert _oauth2(builtin, "airtable").pkce == "required"
    assert _oauth2(builtin, "dropbox").authorize_params["token_access_type"] == "offline"
    assert _oauth2(builtin, "notion").token_auth_method == "client_secret_basic"
    slack = _oauth2(builtin, "slack")
    assert slack.token_url == "https://slack.com/api/oauth.v2.access"
    assert slack.scope_string(["chat:write", "users:read"]) == "chat:write,users:read"
    assert _oauth2(builtin, "github").refresh.issued == "app_setting"
    assert builtin.get("stripe").auth == ("api_key",)
    assert builtin.get("twilio").auth == ("basic",)
    assert set(builtin.get("google").auth) == {"oauth2", "service_account"}


# -- key formats ------------------------------------------------------------------------------


def test_every_key_pattern_has_examples(builtin: Catalog) -> None:
    covered = {(slug, field) for slug, field, _, _ in KEY_EXAMPLES}
    missing = []
    for provider in builtin:
        fields = ["api_key", "username", "password"]
        if provider.api_key:
            fields += [f.name for f in provider.api_key.extra_fields]
        for field in fields:
            if provider.pattern_for(field) and (provider.slug, field) not in covered:
                missing.append((provider.slug, field))
    assert not missing


@pytest.mark.parametrize(("slug", "field", "good", "bad"), KEY_EXAMPLES)
def test_key_matches_documented_formats(
    builtin: Catalog, slug: str, field: str, good: str, bad: str
) -> None:
    provider = builtin.get(slug)
    assert key_matches(provider, good, field) is True
    assert key_matches(provider, Secret(good), field) is True
    assert key_matches(provider, bad, field) is False
    assert key_matches(provider, good + "\n", field) is False
    assert key_matches(provider, " " + good, field) is False


def test_key_matches_is_none_without_a_pattern(builtin: Catalog) -> None:
    assert key_matches(builtin.get("mistral"), "anything") is None
    assert key_matches(builtin.get("google"), "anything") is None
    assert key_matches(builtin.get("stripe"), "anything", "no_such_field") is None


def test_match_key_guesses_the_service(builtin: Catalog) -> None:
    stripe_key = "sk_live_" + "EXAMPLE" + X * 20
    assert [p.slug for p in builtin.match_key(stripe_key)] == ["stripe"]


# -- lookups ----------------------------------------------------------------------------------


def test_unknown_slug_suggests_close_matches(builtin: Catalog) -> None:
    with pytest.raises(NotFound) as info:
        builtin.get("githb")
    assert "githb" in info.value.message
    assert info.value.hint is not None and "'github'" in info.value.hint
    with pytest.raises(NotFound) as info:
        builtin.get("zzzzqqq")
    assert info.value.hint is not None and "providers" in info.value.hint


def test_provider_is_immutable(builtin: Catalog) -> None:
    github = builtin.get("github")
    with pytest.raises(AttributeError):
        github.name = "other"
    raw = github.raw
    raw["name"] = "changed"
    assert github.name == "GitHub" and github.raw["name"] == "GitHub"
    assert repr(github) == "Provider('github', auth=['oauth2', 'api_key'], source='built-in')"


# -- URL templates ----------------------------------------------------------------------------


def test_render_url_fills_template_vars(builtin: Catalog) -> None:
    zendesk = builtin.get("zendesk")
    assert zendesk.oauth2 is not None
    assert (
        zendesk.render_url(zendesk.oauth2.token_url, subdomain="acme")
        == "https://acme.zendesk.com/oauth/tokens"
    )
    shopify = builtin.get("shopify")
    assert shopify.oauth2 is not None
    assert (
        shopify.render_url(shopify.oauth2.token_url, shop="acme-store")
        == "https://acme-store.myshopify.com/admin/oauth/access_token"
    )
    microsoft = builtin.get("microsoft")
    assert microsoft.oauth2 is not None
    assert microsoft.render_url(microsoft.oauth2.token_url).startswith(
        "https://login.microsoftonline.com/common/"
    )


@pytest.mark.parametrize(
    "value",
    [
        "evil.com/x",
        "evil.com#",
        "a@evil.com",
        "acme?x=1",
        "acme#frag",
        "acme%2Fx",
        "acme\\x",
        "acme x",
        "acme\nx",
        "",
        "Acme",  # the pattern is lower-case
        "a" * 300,
    ],
)
def test_render_url_refuses_injection(builtin: Catalog, value: str) -> None:
    zendesk = builtin.get("zendesk")
    assert zendesk.oauth2 is not None
    with pytest.raises(ValidationError) as info:
        zendesk.render_url(zendesk.oauth2.token_url, subdomain=value)
    assert "subdomain" in info.value.message


def test_render_url_needs_values_without_default(builtin: Catalog) -> None:
    shopify = builtin.get("shopify")
    assert shopify.oauth2 is not None
    with pytest.raises(ValidationError) as info:
        shopify.render_url(shopify.oauth2.token_url)
    assert "{shop}" in info.value.message
    with pytest.raises(ValidationError):
        shopify.render_url("https://{nope}.example.com/")


def test_test_request_fills_credentials_and_hides_them(builtin: Catalog) -> None:
    key = "sk_test_" + "EXAMPLE" + X * 17
    request = builtin.get("stripe").test_request("api_key", secrets={"api_key": Secret(key)})
    assert request is not None
    assert request.method == "GET" and request.url == "https://api.stripe.com/v1/balance"
    assert request.headers["Authorization"] == "Bearer " + key
    assert key not in repr(request)
    assert request.succeeded(200) and not request.succeeded(401)

    slack = builtin.get("slack").test_request(secrets={"access_token": "xoxb-EXAMPLE"})
    assert slack is not None
    assert slack.succeeded(200, {"ok": True}) and not slack.succeeded(200, {"ok": False})


def test_test_request_picks_the_request_for_the_mode(builtin: Catalog) -> None:
    linear = builtin.get("linear")
    oauth = linear.test_request("oauth2", secrets={"access_token": "at-EXAMPLE"})
    key = linear.test_request("api_key", secrets={"api_key": "lin_api_EXAMPLE"})
    assert oauth is not None and key is not None
    assert oauth.headers["Authorization"] == "Bearer at-EXAMPLE"
    assert key.headers["Authorization"] == "lin_api_EXAMPLE"
    assert builtin.get("microsoft").test_request("oauth2_client_credentials") is None


def test_basic_auth_placeholder(builtin: Catalog) -> None:
    twilio = builtin.get("twilio").test_request(
        secrets={"username": "AC" + Z * 32, "password": Z * 32}
    )
    assert twilio is not None and twilio.headers["Authorization"].startswith("Basic ")
    mailgun = builtin.get("mailgun").test_request(secrets={"api_key": "key-" + Z * 32})
    assert mailgun is not None
    assert mailgun.url == "https://api.mailgun.net/v3/domains"
    import base64

    encoded = mailgun.headers["Authorization"].removeprefix("Basic ")
    assert base64.b64decode(encoded).decode() == "api:key-" + Z * 32


def test_request_refuses_header_injection_and_host_injection(builtin: Catalog) -> None:
    with pytest.raises(ValidationError) as info:
        builtin.get("stripe").test_request(secrets={"api_key": "sk_test_x\r\nX-Evil: 1"})
    assert "\r" not in info.value.message and "X-Evil" not in info.value.message
    with pytest.raises(ValidationError):
        builtin.get("algolia").test_request(
            secrets={"api_key": Z * 32, "application_id": "evil.com/x"}
        )
    with pytest.raises(ValidationError) as info:
        builtin.get("stripe").test_request(secrets={})
    assert "{api_key}" in info.value.message


def test_secrets_in_url_paths_are_encoded(builtin: Catalog) -> None:
    request = builtin.get("telegram").test_request(secrets={"api_key": "1:A/../x?y#z"})
    assert request is not None
    assert request.url == "https://api.telegram.org/bot1:A%2F..%2Fx%3Fy%23z/getMe"


# -- user provider files ----------------------------------------------------------------------

ACME = """\
acme:
  name: Acme CRM
  auth: [oauth2, api_key]
  docs: https://developer.acme.example/docs
  template_vars:
    - name: tenant
      description: The tenant subdomain.
      pattern: '[a-z0-9-]+'
      example: demo
  oauth2:
    authorization_url: https://{tenant}.acme.example/oauth/authorize
    token_url: https://{tenant}.acme.example/oauth/token
    scopes_default: [read]
    pkce: required
  api_key:
    pattern: 'acme_[a-z0-9]{16}'
    header: X-Acme-Key
    scheme: '-'
  test:
    method: GET
    url: https://{tenant}.acme.example/api/me
    headers:
      X-Acme-Key: '{api_key}'
    expect_status: [200, 204]
"""


def test_user_provider_file_loads_and_overrides(home: Path) -> None:
    path = write_provider(home, "acme.yaml", ACME)
    write_provider(
        home,
        "stripe.yml",
        "stripe:\n  name: Stripe (our proxy)\n  auth: [api_key]\n"
        "  docs: https://docs.stripe.com/keys\n  api_key:\n    header: Authorization\n",
    )
    write_provider(home, "notes.txt", "not a provider")
    catalog = load_catalog()  # CREDWARDEN_HOME from the environment
    acme = catalog.get("acme")
    assert acme.source == str(path)
    assert acme.name == "Acme CRM" and acme.oauth2 is not None and acme.oauth2.pkce == "required"
    assert key_matches(acme, "acme_" + Z * 16) is True
    request = acme.test_request(secrets={"api_key": "k"}, tenant="demo")
    assert request is not None and request.expect_status == (200, 204)
    stripe = catalog.get("stripe")
    assert stripe.name == "Stripe (our proxy)" and key_matches(stripe, "sk_test_x") is None
    assert len(catalog) == len(load_catalog(home / "elsewhere")) + 1
    assert load_catalog(str(home)).get("acme") == acme


def test_plain_http_is_accepted_for_loopback_only(home: Path) -> None:
    write_provider(
        home,
        "dev.yaml",
        "dev:\n  name: Local IdP\n  auth: [oauth2_client_credentials]\n"
        "  docs: http://localhost:8080/\n  oauth2:\n"
        "    token_url: http://127.0.0.1:8080/realms/dev/token\n",
    )
    assert load_catalog(home).get("dev").oauth2 is not None


BAD_FILES = [
    pytest.param(
        "acme.yaml",
        ACME.replace("auth: [oauth2, api_key]", "auth: api_key"),
        "acme.yaml: providers.acme.auth: 'api_key' is not of type 'array'",
        id="wrong-type",
    ),
    pytest.param(
        "acme.yaml",
        ACME.replace("    pkce: required", "    pkce: required\n    tokn_url: https://x.example/"),
        "acme.yaml: providers.acme.oauth2.tokn_url: unknown field",
        id="unknown-field",
    ),
    pytest.param(
        "acme.yaml",
        ACME.replace("    token_url: https://{tenant}.acme.example/oauth/token\n", ""),
        "acme.yaml: providers.acme.oauth2.token_url: is required",
        id="missing-token-url",
    ),
    pytest.param(
        "acme.yaml",
        ACME.replace("acme:", "Acme_CRM:", 1),
        "acme.yaml: providers.Acme_CRM: 'Acme_CRM' is not a valid provider slug",
        id="bad-slug",
    ),
    pytest.param(
        "acme.yaml",
        ACME.replace("https://{tenant}.acme.example/oauth/token", "ftp://x"),
        "acme.yaml: providers.acme.oauth2.token_url: 'ftp://x' does not match '^https?://'",
        id="ftp-url",
    ),
    pytest.param(
        "acme.yaml",
        ACME.replace("https://{tenant}.acme.example/oauth/token", "http://acme.example/token"),
        "acme.yaml: providers.acme.oauth2.token_url: 'http://acme.example/token' must use https",
        id="plain-http",
    ),
    pytest.param(
        "acme.yaml",
        ACME.replace("https://{tenant}.acme.example/oauth/token", "https://u:p@acme.example/t"),
        "acme.yaml: providers.acme.oauth2.token_url: 'https://u:p@acme.example/t' must not carry",
        id="credentials-in-url",
    ),
    pytest.param(
        "acme.yaml",
        ACME.replace("{tenant}.acme.example/oauth/token", "{region}.acme.example/oauth/token"),
        "acme.yaml: providers.acme.oauth2.token_url: placeholder {region} is not declared",
        id="undeclared-placeholder",
    ),
    pytest.param(
        "acme.yaml",
        ACME.replace(
            "    pkce: required", "    pkce: required\n    token_params:\n      client_secret: s"
        ),
        "acme.yaml: providers.acme.oauth2.token_params.client_secret: is not allowed here",
        id="secret-in-params",
    ),
    pytest.param(
        "acme.yaml",
        ACME.replace("'acme_[a-z0-9]{16}'", "'acme_[a-z'"),
        "acme.yaml: providers.acme.api_key.pattern: invalid regular expression",
        id="bad-regex",
    ),
    pytest.param(
        "acme.yaml",
        ACME.replace("    pkce: required", "    pkce: maybe"),
        "acme.yaml: providers.acme.oauth2.pkce: 'maybe' is not one of 'required', 'supported'",
        id="bad-enum",
    ),
    pytest.param(
        "acme.yaml",
        ACME.replace("auth: [oauth2, api_key]", "auth: [oauth2, api_key, basic]"),
        "acme.yaml: providers.acme.basic: is required (auth lists 'basic')",
        id="mode-without-its-block",
    ),
    pytest.param(
        "acme.yaml",
        ACME.replace("    method: GET", "    for: [basic]\n    method: GET"),
        "acme.yaml: providers.acme.test.for: 'basic' is not one of this provider's auth modes",
        id="test-for-unknown-mode",
    ),
    pytest.param(
        "acme.yaml",
        ACME + "other:\n  name: Other\n  auth: [api_key]\n  docs: https://o.example/\n"
        "  api_key: {}\n",
        "acme.yaml: providers: a provider file holds exactly one provider, found 2",
        id="two-providers",
    ),
    pytest.param(
        "acme.yaml", "- just\n- a list\n", "acme.yaml: providers: expected a mapping", id="list"
    ),
    pytest.param(
        "acme.yaml",
        ACME.replace("'{api_key}'", "'{api_key}'\n      revision: 2025-01-15"),
        "acme.yaml: providers.acme.test.headers.revision: datetime.date(2025, 1, 15) is not of",
        id="unquoted-date",
    ),
    pytest.param(
        "acme.yaml",
        "123:\n  name: Numbers\n",
        "acme.yaml: providers.123: key 123 is not a string",
        id="non-string-slug",
    ),
    pytest.param("acme.yaml", "", "acme.yaml: providers: expected a mapping", id="empty"),
    pytest.param(
        "acme.yaml", "acme:\n  name: [unclosed\n", "acme.yaml: not valid YAML", id="bad-yaml"
    ),
]


@pytest.mark.parametrize(("filename", "text", "expected"), BAD_FILES)
def test_bad_user_file_is_refused_with_the_path(
    home: Path, filename: str, text: str, expected: str
) -> None:
    path = write_provider(home, filename, text)
    with pytest.raises(ValidationError) as info:
        load_catalog(home)
    assert info.value.message.startswith(expected), info.value.message
    assert info.value.hint and str(path) in info.value.hint


def test_unknown_field_hint_suggests_the_right_name(home: Path) -> None:
    write_provider(
        home,
        "acme.yaml",
        ACME.replace("    pkce: required", "    pkce: required\n    tokn_url: https://x.example/"),
    )
    with pytest.raises(ValidationError) as info:
        load_catalog(home)
    assert info.value.hint is not None and "'token_url'" in info.value.hint


def test_same_slug_in_two_files_is_refused(home: Path) -> None:
    write_provider(home, "acme.yaml", ACME)
    write_provider(home, "acme2.yml", ACME)
    with pytest.raises(ValidationError) as info:
        load_catalog(home)
    assert "acme2.yml: providers.acme: already defined in acme.yaml" in info.value.message


def test_oversized_user_file_is_refused(home: Path) -> None:
    write_provider(home, "big.yaml", ACME + "#" * 300_000 + "\n")
    with pytest.raises(ValidationError, match="too large"):
        load_catalog(home)


# -- saving and discovery ---------------------------------------------------------------------

GOOGLE_LIKE: dict[str, Any] = {
    "issuer": "https://accounts.example.com",
    "authorization_endpoint": "https://accounts.example.com/o/oauth2/v2/auth",
    "device_authorization_endpoint": "https://oauth2.example.com/device/code",
    "token_endpoint": "https://oauth2.example.com/token",
    "userinfo_endpoint": "https://openidconnect.example.com/v1/userinfo",
    "revocation_endpoint": "https://oauth2.example.com/revoke",
    "jwks_uri": "https://www.example.com/oauth2/v3/certs",
    "response_types_supported": ["code", "token", "id_token", "code token", "none"],
    "subject_types_supported": ["public"],
    "id_token_signing_alg_values_supported": ["RS256"],
    "scopes_supported": ["openid", "email", "profile"],
    "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
    "claims_supported": ["aud", "email", "sub"],
    "code_challenge_methods_supported": ["plain", "S256"],
    "grant_types_supported": [
        "authorization_code",
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:device_code",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
    ],
}

OKTA_LIKE: dict[str, Any] = {
    "issuer": "https://acme.okta.example/oauth2/default",
    "authorization_endpoint": "https://acme.okta.example/oauth2/default/v1/authorize",
    "token_endpoint": "https://acme.okta.example/oauth2/default/v1/token",
    "registration_endpoint": "https://acme.okta.example/oauth2/v1/clients",
    "jwks_uri": "https://acme.okta.example/oauth2/default/v1/keys",
    "response_types_supported": ["code", "id_token", "code id_token"],
    "grant_types_supported": [
        "authorization_code",
        "implicit",
        "refresh_token",
        "client_credentials",
    ],
    "scopes_supported": ["openid", "profile", "email", "address", "phone", "offline_access"],
    "token_endpoint_auth_methods_supported": [
        "client_secret_basic",
        "client_secret_post",
        "client_secret_jwt",
        "private_key_jwt",
        "none",
    ],
    "revocation_endpoint": "https://acme.okta.example/oauth2/default/v1/revoke",
    "introspection_endpoint": "https://acme.okta.example/oauth2/default/v1/introspect",
    "device_authorization_endpoint": "https://acme.okta.example/oauth2/default/v1/device/authorize",
    "code_challenge_methods_supported": ["S256"],
}


def test_discovery_of_an_oidc_provider() -> None:
    entry = provider_from_discovery("example-idp", GOOGLE_LIKE, name="Example IdP")
    assert entry["name"] == "Example IdP"
    assert entry["auth"] == ["oauth2"]
    oauth2 = entry["oauth2"]
    assert oauth2["token_url"] == GOOGLE_LIKE["token_endpoint"]
    assert oauth2["authorization_url"] == GOOGLE_LIKE["authorization_endpoint"]
    assert oauth2["revocation_url"] == GOOGLE_LIKE["revocation_endpoint"]
    assert oauth2["userinfo_url"] == GOOGLE_LIKE["userinfo_endpoint"]
    assert oauth2["device_authorization_url"] == GOOGLE_LIKE["device_authorization_endpoint"]
    assert oauth2["pkce"] == "supported"
    assert oauth2["token_auth_method"] == "client_secret_basic"
    assert oauth2["scopes_default"] == ["openid", "profile", "email"]
    assert "offline_scope" not in oauth2
    assert entry["test"]["url"] == GOOGLE_LIKE["userinfo_endpoint"]
    provider = Provider("example-idp", entry)
    assert provider.oauth2 is not None and provider.oauth2.issuer == GOOGLE_LIKE["issuer"]


def test_discovery_of_okta_like_metadata_saves_and_loads(home: Path) -> None:
    entry = provider_from_discovery("acme-okta", OKTA_LIKE)
    assert entry["auth"] == ["oauth2", "oauth2_client_credentials"]
    assert entry["oauth2"]["offline_scope"] == "offline_access"
    assert entry["oauth2"]["scopes_default"] == ["openid", "profile", "email", "offline_access"]
    assert entry["name"] == "acme.okta.example"
    path = save_user_provider(home, "acme-okta", entry)
    assert path == str(home / "providers" / "acme-okta.yaml")
    assert sorted(os.listdir(home / "providers")) == ["acme-okta.yaml"]
    loaded = load_catalog(home).get("acme-okta")
    assert loaded.raw == entry and loaded.source == path
    with pytest.raises(AlreadyExists):
        save_user_provider(home, "acme-okta", entry)
    entry["name"] = "Acme Okta"
    save_user_provider(home, "acme-okta", entry, replace=True)
    assert load_catalog(home).get("acme-okta").name == "Acme Okta"


def test_discovery_rfc8414_defaults() -> None:
    metadata = {
        "issuer": "http://127.0.0.1:8080/realms/dev",
        "authorization_endpoint": "http://127.0.0.1:8080/realms/dev/auth",
        "token_endpoint": "http://127.0.0.1:8080/realms/dev/token",
    }
    entry = provider_from_discovery("dev", metadata)
    assert entry["auth"] == ["oauth2"]
    assert entry["oauth2"]["token_auth_method"] == "client_secret_basic"
    assert "pkce" not in entry["oauth2"] and "test" not in entry


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"token_endpoint": None}, "token_endpoint is missing"),
        (
            {"token_endpoint": "http://idp.example/token"},
            "token_endpoint 'http://idp.example/token'",
        ),
        ({"authorization_endpoint": None}, "authorization_endpoint is missing"),
        ({"revocation_endpoint": 42}, "revocation_endpoint 42 is not a string"),
        ({"userinfo_endpoint": "https://{x}.example/u"}, "userinfo_endpoint"),
        ({"grant_types_supported": ["implicit"]}, "neither authorization_code"),
        ({"grant_types_supported": "authorization_code"}, "must be a list of strings"),
        ({"token_endpoint_auth_methods_supported": ["tls_client_auth"]}, "no method"),
    ],
)
def test_discovery_refuses_bad_documents(change: dict[str, Any], expected: str) -> None:
    document = {**GOOGLE_LIKE, **change}
    document = {k: v for k, v in document.items() if v is not None}
    with pytest.raises(ValidationError) as info:
        provider_from_discovery("idp", document)
    assert info.value.message.startswith("discovery document: ")
    assert expected in info.value.message


def test_discovery_and_save_refuse_bad_slugs(home: Path) -> None:
    with pytest.raises(ValidationError):
        provider_from_discovery("Bad Slug", GOOGLE_LIKE)
    with pytest.raises(ValidationError):
        save_user_provider(home, "../escape", {"name": "x"})
    assert not (home / "providers").exists() or not os.listdir(home / "providers")


def test_save_refuses_invalid_entries_and_writes_nothing(home: Path) -> None:
    with pytest.raises(ValidationError) as info:
        save_user_provider(
            home, "acme", {"name": "Acme", "auth": ["oauth2"], "docs": "https://a.example/"}
        )
    assert "providers.acme.oauth2: is required (auth lists 'oauth2')" in info.value.message
    assert not (home / "providers").exists() or not os.listdir(home / "providers")


def test_public_surface_is_sorted() -> None:
    assert providers_pkg.__all__ == sorted(providers_pkg.__all__)
    for name in providers_pkg.__all__:
        assert hasattr(providers_pkg, name)
