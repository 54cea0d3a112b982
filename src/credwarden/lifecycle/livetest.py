"""Live checks of a credential against its provider (`credwarden test`).

For an OAuth connection: obtain a valid token (refreshing if needed), then send the
provider's test request with it. For an api_key or basic credential of a known provider:
send the provider's test request with the stored values. Nothing secret is ever shown:
the URL reported keeps its credential placeholders ({api_key}) unfilled. The facade
records the outcome (an audit event; `invalid` health when the provider rejects it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from ..errors import UsageError
from ..model import CredentialInfo
from ..secret import Secret

if TYPE_CHECKING:
    from ..providers import Provider, RequestSpec

MAX_BODY = 256 * 1024
STATIC_MODES = ("api_key", "basic")
# What a service account's token is minted for when it is only being checked: read-only scopes.
TEST_SCOPES = {
    "google_service_account": ["https://www.googleapis.com/auth/cloud-platform.read-only"],
    "azure_service_principal": ["https://graph.microsoft.com/.default"],
}

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REJECTED = 7


class Outcome(NamedTuple):
    address: str
    result: str  # ok | rejected | failed | network_error | no_test
    message: str
    provider: str | None = None
    mode: str | None = None
    method: str | None = None
    url: str | None = None
    status: int | None = None
    elapsed_ms: int | None = None

    @property
    def exit_code(self) -> int:
        if self.result in ("ok", "no_test"):
            return EXIT_OK
        return EXIT_REJECTED if self.result == "rejected" else EXIT_FAILED

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.exit_code == 0, **self._asdict()}


class Subject(Protocol):
    """The credential under test, as the facade hands it over: the test's one event (written
    by the facade) records that its values or a token were used."""

    info: CredentialInfo

    def values(self) -> Mapping[str, str]:
        """Every field of the current version."""

    def token(self, scopes: Sequence[str]) -> str:
        """A valid access token (refreshed or minted if needed)."""


def run_test(subject: Subject, home: str, tvars: dict[str, str], timeout: float) -> Outcome:
    """Build the provider's test request from what the subject gives, and send it."""
    from ..kinds import get_kind

    info = subject.info
    addr = info.address
    refreshable = get_kind(info.kind).refreshable
    if not refreshable and (info.kind not in STATIC_MODES or not info.provider):
        why = (
            f"{info.kind} credentials have no live test"
            if info.kind not in STATIC_MODES
            else "it names no provider (give one with `credwarden add ... --provider SLUG`)"
        )
        return Outcome(addr, "failed", f"nothing to test: {why}")
    provider = _provider(home, info.provider) if info.provider else None
    if info.kind in TEST_SCOPES:
        mode = "service_account"
    elif refreshable:
        mode = (
            "oauth2_client_credentials"
            if info.fields.get("grant") == "client_credentials"
            else "oauth2"
        )
    else:
        mode = info.kind
    spec = provider.test_for(mode) if provider is not None else None
    secrets: Mapping[str, str | Secret]
    if refreshable:
        secrets = {"access_token": Secret(subject.token(TEST_SCOPES.get(info.kind, [])))}
        if spec is None:
            name = info.provider or "(none recorded)"
            return Outcome(
                addr,
                "no_test",
                f"no live test known for provider {name}; the token was obtained",
                provider=info.provider,
                mode=mode,
            )
    elif spec is None:
        return Outcome(
            addr,
            "failed",
            f"nothing to test: no live test known for provider {info.provider} ({mode})",
            provider=info.provider,
            mode=mode,
        )
    else:
        secrets = {k: Secret(v) for k, v in subject.values().items()}
    assert provider is not None and spec is not None
    values = _template_values(provider, spec, tvars, info.tags, addr)
    return _send(addr, provider, mode, spec, secrets, values, timeout)


def _provider(home: str, slug: str) -> Provider:
    from ..providers import load_catalog

    return load_catalog(home).get(slug)


def _placeholders(spec: RequestSpec) -> set[str]:
    from ..providers._validate import PLACEHOLDER_RE

    texts = [spec.url, *spec.headers.values(), *spec.params.values(), spec.body or ""]
    return {name for text in texts for name in PLACEHOLDER_RE.findall(text)}


def _template_values(
    provider: Provider,
    spec: RequestSpec,
    given: dict[str, str],
    tags: Mapping[str, str],
    addr: str,
) -> dict[str, str]:
    """The test URL's template vars: --var first, then the credential's tag of the same name."""
    known = {v.name: v for v in provider.template_vars}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise UsageError(
            f"provider {provider.slug} has no template var {', '.join(unknown)}",
            hint=f"its template vars: {', '.join(known) or 'none'}",
        )
    values: dict[str, str] = {}
    for name in sorted(_placeholders(spec) & set(known)):
        value = given.get(name) or tags.get(name) or known[name].default
        if value is None:
            example = known[name].example or "VALUE"
            raise UsageError(
                f"the live test of {provider.slug} needs {{{name}}}: {known[name].description}",
                hint=f"pass --var {name}={example}, or tag the credential once:"
                f" credwarden update {addr} --tag {name}={example}",
            )
        values[name] = value
    return values


def _shown_url(provider: Provider, spec: RequestSpec, values: Mapping[str, str]) -> str:
    """The test URL with template vars filled and credential placeholders left as written."""
    from ..providers._validate import PLACEHOLDER_RE

    return PLACEHOLDER_RE.sub(
        lambda m: (
            values.get(m.group(1), m.group(0)) if provider.template_var(m.group(1)) else m.group(0)
        ),
        spec.url,
    )


def _send(
    addr: str,
    provider: Provider,
    mode: str,
    spec: RequestSpec,
    secrets: Mapping[str, str | Secret],
    values: Mapping[str, str],
    timeout: float,
) -> Outcome:
    import httpx

    request = provider.build_request(spec, secrets, values)
    base = Outcome(
        addr,
        "failed",
        "",
        provider=provider.slug,
        mode=mode,
        method=request.method,
        url=_shown_url(provider, spec, values),
    )
    started = time.perf_counter()
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False) as http,
            http.stream(
                request.method,
                request.url,
                headers=request.headers,
                content=request.body.encode() if request.body is not None else None,
            ) as response,
        ):
            status = response.status_code
            body = _read_capped(response) if request.expect_json else b""
    except httpx.TimeoutException:
        return base._replace(
            result="network_error", message=f"network error: no answer within {timeout:g} s"
        )
    except httpx.HTTPError as exc:
        text = str(exc).strip()
        reason = _scrub(text.splitlines()[0] if text else "", secrets)[:160]
        return base._replace(
            result="network_error",
            message=f"network error: {type(exc).__name__}" + (f" ({reason})" if reason else ""),
        )
    base = base._replace(status=status, elapsed_ms=round((time.perf_counter() - started) * 1000))
    payload: object = None
    if body:
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
    if request.succeeded(status, payload):
        return base._replace(result="ok", message="ok")
    if status in (401, 403):
        return base._replace(result="rejected", message="the provider rejected the credential")
    if status in request.expect_status:
        expected = ", ".join(f"{k}={v!r}" for k, v in request.expect_json.items())
        return base._replace(
            result="rejected",
            message=f"the answer does not have {expected}: the provider did not accept"
            " the credential",
        )
    wanted = "/".join(str(s) for s in request.expect_status)
    return base._replace(message=f"unexpected answer (expected {wanted})")


def _read_capped(response: Any) -> bytes:
    """At most MAX_BODY bytes of the body; a longer one is not parsed (b'')."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_BODY:
            return b""
        chunks.append(chunk)
    return b"".join(chunks)


def _scrub(text: str, secrets: Mapping[str, str | Secret]) -> str:
    """An error text with any credential value in it masked (a URL may carry a key)."""
    for value in secrets.values():
        plain = value.reveal() if isinstance(value, Secret) else value
        if len(plain) >= 4:
            text = text.replace(plain, "***")
    return text
