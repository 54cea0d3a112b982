"""The `Provider` value object: a validated catalog entry with typed accessors.

Providers are immutable and shared between catalogs; `raw` gives a copy of the
entry as it appears in YAML. URL templates are filled by `render_url`, which
refuses template values that could change where a request goes.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final, NamedTuple
from urllib.parse import quote, quote_plus, urlencode

from ..errors import ValidationError
from ..secret import Secret
from ._validate import PLACEHOLDER_RE

AUTH_MODES: Final = ("oauth2", "oauth2_client_credentials", "api_key", "basic", "service_account")

_UNSAFE_IN_URL: Final = re.compile(r"[/@?#\\%\s\x00-\x1f\x7f]")
_HOST_LABEL: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")
_HEADER_BREAK: Final = re.compile(r"[\r\n\x00]")
_EMPTY: Final[Mapping[str, str]] = MappingProxyType({})


class TemplateVar(NamedTuple):
    name: str
    description: str
    pattern: str | None
    default: str | None
    example: str | None


class RefreshPolicy(NamedTuple):
    """None means the provider does not document it."""

    issued: str | None
    rotates: bool | None
    expires: bool | str | None
    idle_expiry: str | None


class OAuth2Spec(NamedTuple):
    issuer: str | None
    authorization_url: str | None
    token_url: str
    refresh_url: str | None
    revocation_url: str | None
    userinfo_url: str | None
    device_authorization_url: str | None
    introspection_url: str | None
    scopes_default: tuple[str, ...]
    scope_separator: str
    pkce: str | None
    token_auth_method: str
    token_content_type: str
    authorize_params: Mapping[str, str]
    token_params: Mapping[str, str]
    refresh: RefreshPolicy
    access_token_ttl: int | None
    offline_scope: str | None
    quirks: tuple[str, ...]

    def scope_string(self, scopes: tuple[str, ...] | list[str] | None = None) -> str:
        """Scopes joined the way this provider expects (space, comma, ...)."""
        return self.scope_separator.join(self.scopes_default if scopes is None else scopes)


class ExtraField(NamedTuple):
    name: str
    label: str
    secret: bool
    pattern: str | None
    header: str | None
    query_param: str | None
    env_var: str | None


class ApiKeySpec(NamedTuple):
    label: str | None
    pattern: str | None
    header: str | None
    scheme: str | None
    value: str | None
    query_param: str | None
    basic_username: str | None
    basic_password: str | None
    env_var: str | None
    extra_fields: tuple[ExtraField, ...]
    quirks: tuple[str, ...]


class BasicSpec(NamedTuple):
    username_label: str | None
    password_label: str | None
    username_pattern: str | None
    password_pattern: str | None
    username_env_var: str | None
    password_env_var: str | None
    quirks: tuple[str, ...]


class ServiceAccountSpec(NamedTuple):
    format: str
    token_url: str
    audience: str | None
    scopes_default: tuple[str, ...]
    quirks: tuple[str, ...]


class RequestSpec(NamedTuple):
    """A `test` or `revoke` request as written in the catalog (placeholders unfilled)."""

    modes: tuple[str, ...]
    """The auth modes it applies to; empty means all."""
    method: str
    url: str
    headers: Mapping[str, str]
    params: Mapping[str, str]
    body: str | None
    expect_status: tuple[int, ...]
    expect_json: Mapping[str, Any]

    def applies_to(self, mode: str | None) -> bool:
        return mode is None or not self.modes or mode in self.modes


class HttpRequest:
    """A request ready to send. It holds credential values, so its repr shows none."""

    __slots__ = ("body", "expect_json", "expect_status", "headers", "method", "url")

    def __init__(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: str | None,
        expect_status: tuple[int, ...],
        expect_json: Mapping[str, Any],
    ) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.expect_status = expect_status
        self.expect_json = expect_json

    def __repr__(self) -> str:
        return (
            f"HttpRequest(method={self.method!r}, url=<redacted>, headers={sorted(self.headers)},"
            f" expect_status={self.expect_status})"
        )

    def succeeded(self, status: int, payload: object = None) -> bool:
        """Whether a response with this status (and parsed JSON payload) means the test passed."""
        if status not in self.expect_status:
            return False
        if not self.expect_json:
            return True
        if not isinstance(payload, Mapping):
            return False
        return all(payload.get(k) == v for k, v in self.expect_json.items())


class Provider:
    """One service of the catalog. Immutable; compare by slug, data and source."""

    __slots__ = (
        "_data",
        "api_key",
        "auth",
        "basic",
        "categories",
        "docs",
        "name",
        "oauth2",
        "revoke",
        "service_account",
        "slug",
        "source",
        "template_vars",
        "tests",
    )

    _data: dict[str, Any]
    slug: str
    source: str
    name: str
    auth: tuple[str, ...]
    categories: tuple[str, ...]
    docs: str
    template_vars: tuple[TemplateVar, ...]
    oauth2: OAuth2Spec | None
    api_key: ApiKeySpec | None
    basic: BasicSpec | None
    service_account: ServiceAccountSpec | None
    tests: tuple[RequestSpec, ...]
    revoke: RequestSpec | None

    def __init__(self, slug: str, entry: Mapping[str, Any], *, source: str = "built-in") -> None:
        """`entry` must already be valid (see `load_catalog` / `validate_entry`)."""
        data = copy.deepcopy(dict(entry))
        fields: dict[str, object] = {
            "_data": data,
            "slug": slug,
            "source": source,
            "name": data["name"],
            "auth": tuple(data["auth"]),
            "categories": tuple(data.get("categories", ())),
            "docs": data["docs"],
            "template_vars": tuple(
                TemplateVar(
                    v["name"],
                    v["description"],
                    v.get("pattern"),
                    v.get("default"),
                    v.get("example"),
                )
                for v in data.get("template_vars", ())
            ),
            "oauth2": _oauth2(data.get("oauth2")),
            "api_key": _api_key(data.get("api_key")),
            "basic": _basic(data.get("basic")),
            "service_account": _service_account(data.get("service_account")),
            "tests": tuple(_request(t) for t in _as_list(data.get("test"))),
            "revoke": _request(data["revoke"]) if data.get("revoke") else None,
        }
        for key, value in fields.items():
            object.__setattr__(self, key, value)

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError(f"Provider is immutable (cannot set {key!r})")

    def __repr__(self) -> str:
        return f"Provider({self.slug!r}, auth={list(self.auth)}, source={self.source!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Provider):
            return NotImplemented
        return (self.slug, self.source, self._data) == (other.slug, other.source, other._data)

    def __hash__(self) -> int:
        return hash((self.slug, self.source))

    @property
    def raw(self) -> dict[str, Any]:
        """A copy of the entry as written in the catalog."""
        return copy.deepcopy(self._data)

    def supports(self, mode: str) -> bool:
        return mode in self.auth

    def template_var(self, name: str) -> TemplateVar | None:
        for var in self.template_vars:
            if var.name == name:
                return var
        return None

    def pattern_for(self, field: str = "api_key") -> str | None:
        """The documented format of a field: api_key, username, password or an extra field."""
        if field == "api_key":
            return self.api_key.pattern if self.api_key else None
        if field in ("username", "password"):
            if self.basic is None:
                return None
            return (
                self.basic.username_pattern if field == "username" else self.basic.password_pattern
            )
        if self.api_key:
            for extra in self.api_key.extra_fields:
                if extra.name == field:
                    return extra.pattern
        return None

    def render_url(self, template: str, **values: str) -> str:
        """Fill the {template vars} of a URL; values must match the var's pattern.

        A value may never hold '/', '@', '?', '#', '\\', '%' or whitespace, whatever
        the pattern says: a subdomain cannot be turned into another host or path.
        """
        return PLACEHOLDER_RE.sub(lambda m: self._template_value(m.group(1), values), template)

    def test_for(self, mode: str | None = None) -> RequestSpec | None:
        """The test request for an auth mode (the first that applies), or None."""
        for spec in self.tests:
            if spec.applies_to(mode):
                return spec
        return None

    def test_request(
        self,
        mode: str | None = None,
        *,
        secrets: Mapping[str, str | Secret] | None = None,
        **values: str,
    ) -> HttpRequest | None:
        """The test request for `mode`, filled from the credential's `secrets` and template values.

        `secrets` keys: access_token, api_key, refresh_token, username, password,
        client_id, client_secret and extra field names. Returns None when the
        catalog has no test for that mode.
        """
        spec = self.test_for(mode)
        return None if spec is None else self.build_request(spec, secrets or {}, values)

    def revoke_request(
        self,
        mode: str | None = None,
        *,
        secrets: Mapping[str, str | Secret] | None = None,
        **values: str,
    ) -> HttpRequest | None:
        """The non-RFC 7009 revocation request, or None (then use oauth2.revocation_url)."""
        if self.revoke is None or not self.revoke.applies_to(mode):
            return None
        return self.build_request(self.revoke, secrets or {}, values)

    def build_request(
        self, spec: RequestSpec, secrets: Mapping[str, str | Secret], values: Mapping[str, str]
    ) -> HttpRequest:
        runtime = self._runtime_values(secrets)
        url = self._fill_url(spec.url, runtime, values)
        if spec.params:
            query = urlencode(
                {k: self._fill_text(v, runtime, values) for k, v in spec.params.items()}
            )
            url += ("&" if "?" in url else "?") + query
        headers: dict[str, str] = {}
        for name, template in spec.headers.items():
            value = self._fill_text(template, runtime, values)
            if _HEADER_BREAK.search(value):
                raise ValidationError(
                    f"{self.slug}: a value for header {name} contains a line break",
                    hint="check the stored credential for stray newlines",
                )
            headers[name] = value
        body = None
        if spec.body is not None:
            as_json = spec.body.lstrip().startswith(("{", "["))
            body = self._fill_text(
                spec.body, runtime, values, escape=_json_escape if as_json else quote_plus
            )
        return HttpRequest(spec.method, url, headers, body, spec.expect_status, spec.expect_json)

    # -- internals --------------------------------------------------------------------------

    def _template_value(self, name: str, values: Mapping[str, str]) -> str:
        var = self.template_var(name)
        if var is None:
            raise ValidationError(
                f"{self.slug}: {{{name}}} is not a template var of this provider",
                hint=f"template vars: {', '.join(v.name for v in self.template_vars) or 'none'}",
            )
        value = values.get(name, var.default)
        if value is None:
            example = f", e.g. {var.example}" if var.example else ""
            raise ValidationError(
                f"{self.slug}: a value for {{{name}}} is needed",
                hint=f"pass {name}=...: {var.description}{example}",
            )
        if (
            not isinstance(value, str)
            or not value
            or len(value) > 253
            or _UNSAFE_IN_URL.search(value)
        ):
            raise ValidationError(
                f"{self.slug}: {name} {_show(value)} is not allowed in a URL",
                hint="no '/', '@', '?', '#', '\\', '%' or whitespace: give just the name, e.g. "
                + (var.example or var.default or "acme"),
            )
        if var.pattern is not None and not _compiled(var.pattern).fullmatch(value):
            raise ValidationError(
                f"{self.slug}: {name} {_show(value)} does not match {var.pattern!r}",
                hint=var.description,
            )
        return value

    def _runtime_values(self, secrets: Mapping[str, str | Secret]) -> dict[str, str]:
        plain = {k: _plain(v) for k, v in secrets.items() if v is not None}
        token = plain.get("access_token") or plain.get("api_key")
        if token is not None:
            plain.setdefault("token", token)
        if "username" in plain and "password" in plain:
            plain.setdefault("basic", _b64(f"{plain['username']}:{plain['password']}"))
        elif self.api_key is not None and "api_key" in plain:
            if self.api_key.basic_username is not None:
                plain.setdefault("basic", _b64(f"{self.api_key.basic_username}:{plain['api_key']}"))
            elif self.api_key.basic_password is not None:
                plain.setdefault("basic", _b64(f"{plain['api_key']}:{self.api_key.basic_password}"))
        if "client_id" in plain and "client_secret" in plain:
            plain.setdefault("client_basic", _b64(f"{plain['client_id']}:{plain['client_secret']}"))
        return plain

    def _lookup(self, name: str, runtime: Mapping[str, str], values: Mapping[str, str]) -> str:
        if self.template_var(name) is not None:
            return self._template_value(name, values)
        if name in runtime:
            return runtime[name]
        raise ValidationError(
            f"{self.slug}: the request needs {{{name}}}",
            hint=f"pass {name} in secrets= (it comes from the stored credential)",
        )

    def _fill_url(
        self, template: str, runtime: Mapping[str, str], values: Mapping[str, str]
    ) -> str:
        scheme, sep, rest = template.partition("://")
        authority, slash, tail = rest.partition("/")

        def host_part(m: re.Match[str]) -> str:
            name = m.group(1)
            value = self._lookup(name, runtime, values)
            if self.template_var(name) is None and not _HOST_LABEL.match(value):
                raise ValidationError(
                    f"{self.slug}: the value for {{{name}}} cannot be part of a host name",
                    hint="it must be letters, digits and '-' only",
                )
            return value

        def path_part(m: re.Match[str]) -> str:
            name = m.group(1)
            value = self._lookup(name, runtime, values)
            return value if self.template_var(name) is not None else quote(value, safe=":")

        return (
            scheme
            + sep
            + PLACEHOLDER_RE.sub(host_part, authority)
            + slash
            + PLACEHOLDER_RE.sub(path_part, tail)
        )

    def _fill_text(
        self,
        template: str,
        runtime: Mapping[str, str],
        values: Mapping[str, str],
        *,
        escape: Callable[[str], str] | None = None,
    ) -> str:
        def sub(m: re.Match[str]) -> str:
            value = self._lookup(m.group(1), runtime, values)
            return escape(value) if escape is not None else value

        return PLACEHOLDER_RE.sub(sub, template)


def key_matches(provider: Provider, value: str | Secret, field: str = "api_key") -> bool | None:
    """Whether `value` has the documented format of `field`; None when there is no pattern."""
    pattern = provider.pattern_for(field)
    if pattern is None:
        return None
    return _compiled(pattern).fullmatch(_plain(value)) is not None


# -- building specs from validated data -------------------------------------------------------


def _oauth2(data: Mapping[str, Any] | None) -> OAuth2Spec | None:
    if data is None:
        return None
    refresh = data.get("refresh", {})
    return OAuth2Spec(
        issuer=data.get("issuer"),
        authorization_url=data.get("authorization_url"),
        token_url=data["token_url"],
        refresh_url=data.get("refresh_url"),
        revocation_url=data.get("revocation_url"),
        userinfo_url=data.get("userinfo_url"),
        device_authorization_url=data.get("device_authorization_url"),
        introspection_url=data.get("introspection_url"),
        scopes_default=tuple(data.get("scopes_default", ())),
        scope_separator=data.get("scope_separator", " "),
        pkce=data.get("pkce"),
        token_auth_method=data.get("token_auth_method", "client_secret_basic"),
        token_content_type=data.get("token_content_type", "form"),
        authorize_params=_frozen(data.get("authorize_params")),
        token_params=_frozen(data.get("token_params")),
        refresh=RefreshPolicy(
            refresh.get("issued"),
            refresh.get("rotates"),
            refresh.get("expires"),
            refresh.get("idle_expiry"),
        ),
        access_token_ttl=data.get("access_token_ttl"),
        offline_scope=data.get("offline_scope"),
        quirks=tuple(data.get("quirks", ())),
    )


def _api_key(data: Mapping[str, Any] | None) -> ApiKeySpec | None:
    if data is None:
        return None
    return ApiKeySpec(
        label=data.get("label"),
        pattern=data.get("pattern"),
        header=data.get("header"),
        scheme=data.get("scheme"),
        value=data.get("value"),
        query_param=data.get("query_param"),
        basic_username=data.get("basic_username"),
        basic_password=data.get("basic_password"),
        env_var=data.get("env_var"),
        extra_fields=tuple(
            ExtraField(
                f["name"],
                f["label"],
                f.get("secret", True),
                f.get("pattern"),
                f.get("header"),
                f.get("query_param"),
                f.get("env_var"),
            )
            for f in data.get("extra_fields", ())
        ),
        quirks=tuple(data.get("quirks", ())),
    )


def _basic(data: Mapping[str, Any] | None) -> BasicSpec | None:
    if data is None:
        return None
    return BasicSpec(
        data.get("username_label"),
        data.get("password_label"),
        data.get("username_pattern"),
        data.get("password_pattern"),
        data.get("username_env_var"),
        data.get("password_env_var"),
        tuple(data.get("quirks", ())),
    )


def _service_account(data: Mapping[str, Any] | None) -> ServiceAccountSpec | None:
    if data is None:
        return None
    return ServiceAccountSpec(
        data["format"],
        data["token_url"],
        data.get("audience"),
        tuple(data.get("scopes_default", ())),
        tuple(data.get("quirks", ())),
    )


def _request(data: Mapping[str, Any]) -> RequestSpec:
    status = data.get("expect_status", 200)
    return RequestSpec(
        modes=tuple(data.get("for", ())),
        method=data["method"],
        url=data["url"],
        headers=_frozen(data.get("headers")),
        params=_frozen(data.get("params")),
        body=data.get("body"),
        expect_status=tuple(status) if isinstance(status, list) else (status,),
        expect_json=MappingProxyType(dict(data.get("expect_json", {}))),
    )


def _as_list(value: object) -> list[Mapping[str, Any]]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    assert isinstance(value, Mapping)
    return [value]


def _frozen(value: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(value)) if value else _EMPTY


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _plain(value: str | Secret) -> str:
    return value.reveal() if isinstance(value, Secret) else value


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _json_escape(value: str) -> str:
    return json.dumps(value)[1:-1]


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:79] + "…"
