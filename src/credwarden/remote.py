"""Remote mode: with CREDWARDEN_URL set, the facade and every command talk to `credwarden serve`."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from .access.grants import Grant
from .access.policy import Principal
from .access.records import PrincipalRecord
from .address import parse_address, parse_ref
from .audit.chain import AuditEvent, VerifyReport
from .errors import (
    CredentialInvalid,
    CredwardenError,
    PermissionDenied,
    RateLimited,
    StoreError,
    Unauthenticated,
    UsageError,
)
from .model import Credential, CredentialInfo, VersionInfo
from .secret import Secret
from .settings import Settings, is_loopback_host
from .warden import Warden

_list = list  # `list` is shadowed by a method name below

DEFAULT_TIMEOUT = 30.0
POLL_S = 0.5
"""How often `connect` asks the server whether the authorization has arrived."""
IDLE_REOPEN_S = 4.0
"""A write on a connection idle this long goes on a new one: the server may have closed it
(uvicorn's keep-alive is 15 s), and a write is never retried."""
_TOKEN_RE = re.compile(r"[\x21-\x7e]{8,4096}\Z")
_DROPPED = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)
_NOT_REMOTE_HINT = (
    "run it on the server's host against the store (unset CREDWARDEN_URL and CREDWARDEN_TOKEN)"
)


def shown_url(url: str) -> str:
    """scheme://host[:port]/path of a server URL: no user info, query or fragment."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<invalid URL>"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    return f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"


def _error_classes() -> tuple[dict[str, type[CredwardenError]], dict[int, type[CredwardenError]]]:
    """Every CredwardenError subclass loaded, by code and (most general first) by exit code."""
    by_code: dict[str, type[CredwardenError]] = {}
    by_exit: dict[int, type[CredwardenError]] = {}
    queue: _list[type[CredwardenError]] = [CredwardenError]
    while queue:
        cls = queue.pop(0)
        by_code.setdefault(cls.code, cls)
        by_exit.setdefault(cls.exit_code, cls)
        queue.extend(cls.__subclasses__())
    return by_code, by_exit


def _make_error(cls: type[CredwardenError], message: str, hint: str | None) -> CredwardenError:
    try:
        return cls(message, hint=hint)
    except TypeError:  # a subclass with its own constructor (e.g. OAuthError)
        exc = cls.__new__(cls)
        CredwardenError.__init__(exc, message, hint=hint)
        return exc


def _text(d: Mapping[str, Any], key: str, limit: int) -> str | None:
    v = d.get(key)
    return v[:limit] if isinstance(v, str) else None


def _info(d: Mapping[str, Any]) -> CredentialInfo:
    """A CredentialInfo from its `to_dict` (secret fields back to None)."""
    secret = set(d.get("secret_fields") or ())
    fields = {k: (None if k in secret else v) for k, v in dict(d["fields"]).items()}
    values: dict[str, Any] = {k: d.get(k) for k in CredentialInfo._fields}
    values["fields"] = fields
    return CredentialInfo(**values)


class RemoteWarden(Warden):
    """The facade against a server: `Warden.open()` returns one when CREDWARDEN_URL is set.

    Operations are REST calls instead of store transactions: the server authorizes and audits
    them as the token's principal. They return the same types as the local facade, and the
    server's errors come back as the same exception classes (so the CLI exits with the same
    codes). Only the standard library's http.client is used: a remote `credwarden get` starts
    as fast as a local one. Operations that need the store or the master key on this machine
    raise UsageError.
    """

    def __init__(
        self,
        url: str,
        token: str | Secret,
        *,
        source: str = "sdk",
        timeout: float = DEFAULT_TIMEOUT,
        settings: Settings | None = None,
    ) -> None:
        # Warden.__init__ is not called on purpose: there is no store or key here.
        token = token.reveal() if isinstance(token, Secret) else token
        token = token.strip()
        self._url_shown = shown_url(url)
        try:
            parts = urllib.parse.urlsplit(url.strip())
            port = parts.port
        except ValueError:
            parts, port = None, None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(
                f"CREDWARDEN_URL is not an http(s) URL ({self._url_shown})",
                hint="e.g. https://credwarden.internal or http://127.0.0.1:8470",
            )
        if parts.username is not None or parts.password is not None:
            raise UsageError(
                f"CREDWARDEN_URL must not hold a user name or password ({self._url_shown})",
                hint="the API token (CREDWARDEN_TOKEN) is what authenticates",
            )
        if (
            parts.scheme == "http"
            and not is_loopback_host(parts.hostname)
            and os.environ.get("CREDWARDEN_ALLOW_HTTP") != "1"
        ):
            raise UsageError(
                f"CREDWARDEN_URL is plain http to another machine ({self._url_shown}): the API"
                " token and every secret read would cross the network unencrypted",
                hint="use https (a TLS proxy in front of `credwarden serve`), or set"
                " CREDWARDEN_ALLOW_HTTP=1 on a network you trust",
            )
        if not _TOKEN_RE.match(token):
            raise UsageError(  # never echo it: it is (almost) a secret
                "CREDWARDEN_TOKEN is malformed (expected one word such as cwt_...)",
                hint="copy it again from `credwarden principal token NAME` (on the server)",
            )
        if not (0 < timeout <= 3600):
            raise UsageError("the timeout must be between 0 and 3600 seconds")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = port
        self._prefix = parts.path.rstrip("/")
        self._token = Secret(token)
        self._timeout = float(timeout)
        self._origin = source
        from . import __version__

        self._agent = f"credwarden-cli/{__version__} ({source})"
        self._conn: http.client.HTTPConnection | None = None
        self._last_use = 0.0
        self._lock = threading.RLock()
        self._whoami: Principal | None = None
        self._envs: _list[str] | None = None
        self._kinds: dict[str, str] = {}
        self.settings = settings or Settings.from_env()
        self.key_source = "held by the server"

    @classmethod
    def from_env(
        cls, *, source: str = "sdk", environ: Mapping[str, str] | None = None
    ) -> RemoteWarden:
        """The server named by CREDWARDEN_URL, with CREDWARDEN_TOKEN (and CREDWARDEN_TIMEOUT)."""
        env = os.environ if environ is None else environ
        url = env.get("CREDWARDEN_URL", "").strip()
        if not url:
            raise UsageError("CREDWARDEN_URL is not set", hint="e.g. https://credwarden.internal")
        token = env.get("CREDWARDEN_TOKEN", "").strip()
        if not token:
            raise UsageError(
                "CREDWARDEN_URL is set but CREDWARDEN_TOKEN is not",
                hint="get a token: credwarden principal token NAME (on the server)",
            )
        raw = env.get("CREDWARDEN_TIMEOUT", "").strip()
        try:
            timeout = float(raw) if raw else DEFAULT_TIMEOUT
        except ValueError:
            raise UsageError(
                f"CREDWARDEN_TIMEOUT is not a number of seconds ({raw[:20]!r})",
                hint="e.g. CREDWARDEN_TIMEOUT=30",
            ) from None
        return cls(url, token, source=source, timeout=timeout, settings=Settings.from_env(env))

    @classmethod
    def open(
        cls,
        *,
        home: str | os.PathLike[str] | None = None,
        database_url: str | None = None,
        settings: Settings | None = None,
        source: str = "sdk",
        prompt: Callable[[str, bool], str] | None = None,
        principal: Principal | None = None,
        policy: Any = None,
    ) -> RemoteWarden:
        if home is not None or database_url is not None:
            raise UsageError(
                "a RemoteWarden opens the server named by CREDWARDEN_URL, not a home or database",
                hint="use Warden.open(home=...) for a local store",
            )
        return cls.from_env(source=source)

    def __repr__(self) -> str:
        who = f", principal={self._whoami.name!r}" if self._whoami is not None else ""
        return f"RemoteWarden(url={self._url_shown!r}{who})"

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> RemoteWarden:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- who and where -------------------------------------------------------------------

    @property
    def principal(self) -> Principal:
        """The token's principal (asked of the server once)."""
        if self._whoami is None:
            d = self._call("GET", "/v1/whoami")
            self._whoami = Principal(str(d["name"]), str(d.get("type") or "user"))
        return self._whoami

    @property
    def source(self) -> str:
        return "remote"

    @property
    def url(self) -> str:
        """The server's URL, without anything secret."""
        return self._url_shown

    @property
    def environments(self) -> _list[str]:
        if self._envs is None:
            self._load_environments()
            assert self._envs is not None
        return self._envs

    @environments.setter
    def environments(self, value: _list[str]) -> None:
        self._envs = _list(value)

    @property
    def store_id(self) -> str:
        _unavailable("store_id")

    @store_id.setter
    def store_id(self, value: str) -> None:
        _unavailable("store_id")

    @property
    def access(self) -> Any:
        _unavailable("access")

    @access.setter
    def access(self, value: Any) -> None:
        _unavailable("access")

    def _load_environments(self) -> dict[str, _list[str]]:
        d = self._call("GET", "/v1/environments")
        self._envs = _list(d["environments"])
        return {"environments": self._envs, "protected": _list(d.get("protected") or [])}

    def health(self) -> dict[str, Any]:
        """The server's /healthz answer."""
        d = self._call("GET", "/healthz")
        return dict(d)

    # -- HTTP ----------------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self._https:
                import ssl

                cafile = os.environ.get("SSL_CERT_FILE") or os.environ.get("REQUESTS_CA_BUNDLE")
                try:
                    ctx = ssl.create_default_context(cafile=cafile or None)
                except (OSError, ssl.SSLError):
                    raise UsageError(
                        "cannot load the CA certificates named by SSL_CERT_FILE/REQUESTS_CA_BUNDLE",
                        hint="point it at a readable PEM bundle, or unset it",
                    ) from None
                self._conn = http.client.HTTPSConnection(
                    self._host, self._port, timeout=self._timeout, context=ctx
                )
            else:
                self._conn = http.client.HTTPConnection(
                    self._host, self._port, timeout=self._timeout
                )
        return self._conn

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, Any]] = (),
        body: Any = None,
        timeout: float | None = None,
    ) -> Any:
        """One request; the decoded JSON answer, or the server's error raised as its class."""
        status, _headers, data = self._request(method, path, query, body, timeout)
        if status >= 300:
            raise self._error(status, data)
        try:
            return json.loads(data)
        except ValueError:
            raise StoreError(
                f"the server at {self._url_shown} answered HTTP {status} with something other"
                " than JSON",
                hint="check that CREDWARDEN_URL points at `credwarden serve`",
            ) from None

    def _request(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, Any]],
        body: Any,
        timeout: float | None,
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        target = self._prefix + path
        pairs = [(k, v) for k, v in query if v is not None]
        if pairs:
            target += "?" + urllib.parse.urlencode(pairs)
        headers = {
            "Authorization": f"Bearer {self._token.reveal()}",
            "User-Agent": self._agent,
            "Accept": "application/json",
        }
        payload = None
        if body is not None:
            payload = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        wait = self._timeout if timeout is None else max(self._timeout, timeout)
        with self._lock:
            if (
                method != "GET"
                and self._conn is not None
                and time.monotonic() - self._last_use > IDLE_REOPEN_S
            ):
                self.close()
            for attempt in (1, 2):
                conn = self._connection()
                fresh = conn.sock is None
                conn.timeout = wait
                if conn.sock is not None:
                    conn.sock.settimeout(wait)
                try:
                    conn.request(method, target, body=payload, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    self._last_use = time.monotonic()
                    if resp.will_close:
                        self.close()
                    return resp.status, resp.msg, data
                except _DROPPED:
                    self.close()
                    if attempt == 1 and not fresh and method == "GET":
                        continue  # the server closed the idle keep-alive connection: once more
                    if fresh and method == "GET":
                        self._unreachable("the connection was reset")
                    raise StoreError(
                        f"the connection to {self._url_shown} dropped before an answer",
                        hint="the change may or may not have been made: look, then retry",
                    ) from None
                except BaseException as exc:
                    self.close()
                    self._raise_transport(exc, wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _raise_transport(self, exc: BaseException, wait: float) -> NoReturn:
        if isinstance(exc, ConnectionRefusedError):
            self._unreachable("connection refused")
        if isinstance(exc, TimeoutError):
            raise StoreError(
                f"the credwarden server at {self._url_shown} did not answer within {wait:g} s",
                hint="is it overloaded or behind a firewall? raise CREDWARDEN_TIMEOUT if needed",
            ) from None
        import ssl

        if isinstance(exc, ssl.SSLCertVerificationError):
            raise StoreError(
                f"the TLS certificate of {self._url_shown} could not be verified"
                f" ({exc.verify_message})",
                hint="set SSL_CERT_FILE to the CA bundle that signed it",
            ) from None
        if isinstance(exc, ssl.SSLError):
            raise StoreError(
                f"TLS with {self._url_shown} failed ({exc.reason or 'handshake'})",
                hint="check the scheme (https vs http) and port of CREDWARDEN_URL",
            ) from None
        if isinstance(exc, http.client.HTTPException):
            # Never its text: it may quote what the other end sent.
            raise StoreError(
                f"the server at {self._url_shown} answered something that is not HTTP"
                f" ({type(exc).__name__})",
                hint="check the scheme and port of CREDWARDEN_URL",
            ) from None
        if isinstance(exc, OSError):
            self._unreachable(exc.strerror or type(exc).__name__)
        raise exc

    def _unreachable(self, why: str) -> NoReturn:
        raise StoreError(
            f"cannot reach the credwarden server at {self._url_shown}: {why}",
            hint="is `credwarden serve` running? check CREDWARDEN_URL",
        ) from None

    def _error(self, status: int, data: bytes) -> CredwardenError:
        """The server's error as the exception the local facade would raise."""
        d: Any = None
        with contextlib.suppress(ValueError):
            d = json.loads(data)
        code = _text(d, "code", 64) if isinstance(d, dict) else None
        message = _text(d, "message", 1000) if isinstance(d, dict) else None
        if code is None or message is None:
            # Not our error shape (a proxy's page?): never echo the body.
            where = f"the server at {self._url_shown}"
            if status == 401:
                return Unauthenticated(
                    f"{where} refused the token (HTTP 401)",
                    hint="check CREDWARDEN_TOKEN (credwarden principal token NAME)",
                )
            if status == 403:
                return PermissionDenied(f"{where} refused the request (HTTP 403)")
            if status == 429:
                return RateLimited(f"{where} asks to slow down (HTTP 429)")
            return StoreError(
                f"{where} answered HTTP {status}",
                hint="check CREDWARDEN_URL points at `credwarden serve`; see the server's log",
            )
        hint = _text(d, "hint", 1000)
        if status == 404 and code == "no_route":
            return StoreError(
                f"the server at {self._url_shown} has no such route",
                hint="is it an older credwarden? check CREDWARDEN_URL (and its path)",
            )
        by_code, by_exit = _error_classes()
        cls = by_code.get(code)
        if cls is None:
            if status >= 500:
                return StoreError(
                    f"the server at {self._url_shown} failed (HTTP {status}, {code})",
                    hint=hint or "see the server's log",
                )
            exit_code = d.get("exit_code")
            cls = by_exit.get(exit_code if isinstance(exit_code, int) else -1, CredwardenError)
        return _make_error(cls, message, hint)

    # -- paths ---------------------------------------------------------------------------

    @staticmethod
    def _cred(address: str, suffix: str = "") -> tuple[str, str]:
        a = parse_address(address)
        return str(a), f"/v1/credentials/{a.env}/{a.service}/{a.name}{suffix}"

    @staticmethod
    def _seg(name: str) -> str:
        return urllib.parse.quote(str(name), safe="")

    # -- reads ---------------------------------------------------------------------------

    def _value(self, address: str) -> tuple[str, dict[str, str]]:
        addr, path = self._cred(address, "/value")
        values = self._call("GET", path)
        return addr, {str(k): str(v) for k, v in dict(values).items()}

    def get(self, ref: str) -> Secret:
        """The value of one field (`addr#field`), or of the kind's main field: one request,
        one audited read of that field."""
        address, wanted = parse_ref(ref)
        _addr, path = self._cred(str(address), "/value")
        query = [("field", wanted)] if wanted is not None else [("main", "true")]
        values = dict(self._call("GET", path, query=query))
        if len(values) != 1:
            raise StoreError(f"the server at {self._url_shown} answered an unexpected value")
        return Secret(str(next(iter(values.values()))))

    def read(self, address: str) -> Credential:
        """Every field of the current version (secrets wrapped), with the metadata."""
        addr, values = self._value(address)
        info = self.describe(addr)
        out: dict[str, Secret | str] = {
            k: (v if info.fields.get(k) is not None else Secret(v)) for k, v in values.items()
        }
        return Credential(info, dict(sorted(out.items())))

    def headers(self, address: str) -> dict[str, Secret]:
        _, path = self._cred(address, "/headers")
        return {str(k): Secret(str(v)) for k, v in dict(self._call("GET", path)).items()}

    def describe(self, address: str) -> CredentialInfo:
        addr, path = self._cred(address)
        info = _info(self._call("GET", path))
        self._kinds[addr] = info.kind
        return info

    def list(
        self,
        *,
        env: str | None = None,
        service: str | None = None,
        kind: str | None = None,
        health: str | None = None,
    ) -> _list[CredentialInfo]:
        query = [("env", env), ("service", service), ("kind", kind), ("health", health)]
        return [_info(d) for d in self._call("GET", "/v1/credentials", query=query)]

    def history(self, address: str) -> _list[VersionInfo]:
        _, path = self._cred(address, "/versions")
        return [VersionInfo(**d) for d in self._call("GET", path)]

    def env_vars(self, *, env: str, only: Sequence[str] = ()) -> dict[str, Secret]:
        query = [("env", env), *(("only", p) for p in only)]
        out = self._call("GET", "/v1/env-vars", query=query)
        return {str(k): Secret(str(v)) for k, v in dict(out).items()}

    # -- writes --------------------------------------------------------------------------

    def add(
        self,
        address: str,
        kind: str,
        fields: Mapping[str, str | Secret],
        *,
        provider: str | None = None,
        description: str | None = None,
        owner: str | None = None,
        tags: Mapping[str, str] | None = None,
        links: Sequence[str] | None = None,
        expires_at: str | None = None,
        rotate_every: int | None = None,
    ) -> CredentialInfo:
        addr = str(parse_address(address))
        body = {
            "address": addr,
            "kind": kind,
            "fields": _reveal(fields),
            "provider": provider,
            "description": description,
            "owner": owner,
            "tags": dict(tags or {}),
            "links": _list(links or []),
            "expires_at": expires_at,
            "rotate_every": rotate_every,
        }
        return _info(self._call("POST", "/v1/credentials", body=body))

    def update(
        self,
        address: str,
        *,
        fields: Mapping[str, str | Secret] | None = None,
        unset: Sequence[str] = (),
        expected_version: int | None = None,
        note: str = "updated",
        **metadata: Any,
    ) -> CredentialInfo:
        _, path = self._cred(address)
        body: dict[str, Any] = {
            "fields": _reveal(fields or {}),
            "unset": _list(unset),
            "expected_version": expected_version,
            "note": note,
        }
        clear = []
        for key, value in metadata.items():
            if value is None:
                clear.append(key)
            elif key in ("tags", "add_tags"):
                body[key] = dict(value)
            elif key in ("links", "add_links"):
                body[key] = _list(value)
            else:
                body[key] = value
        if clear:
            body["clear"] = clear
        return _info(self._call("PATCH", path, body=body))

    def rollback(
        self, address: str, to_version: int, *, expected_version: int | None = None
    ) -> CredentialInfo:
        _, path = self._cred(address, "/rollback")
        body = {"to_version": to_version, "expected_version": expected_version}
        return _info(self._call("POST", path, body=body))

    def remove(
        self, address: str, *, expected_version: int | None = None, revoke: bool = True
    ) -> str | None:
        addr, path = self._cred(address)
        query = [("expected_version", expected_version), ("revoke", "true" if revoke else "false")]
        out = self._call("DELETE", path, query=query)
        self._kinds.pop(addr, None)
        revoked = out.get("revocation")
        return str(revoked) if revoked is not None else None

    def import_entries(
        self,
        entries: Sequence[tuple[str, str]],
        *,
        env: str,
        service: str,
        overwrite: bool = False,
    ) -> _list[CredentialInfo]:
        body = {
            "entries": [[str(k), str(v)] for k, v in entries],
            "env": env,
            "service": service,
            "overwrite": overwrite,
        }
        return [_info(d) for d in self._call("POST", "/v1/import", body=body)]

    # -- environments --------------------------------------------------------------------

    def add_environment(self, name: str) -> _list[str]:
        out = self._call("POST", "/v1/environments", body={"name": name})
        self._envs = _list(out["environments"])
        return _list(self._envs)

    def protected_environments(self) -> _list[str]:
        return sorted(self._load_environments()["protected"])

    def protect_environment(self, env: str, protected: bool = True) -> _list[str]:
        path = f"/v1/environments/{self._seg(env)}/protection"
        out = self._call("PUT", path, body={"protected": bool(protected)})
        return _list(out["protected"])

    # -- use: tokens, live checks ----------------------------------------------------------

    def access_token(
        self,
        address: str,
        *,
        scopes: Sequence[str] = (),
        subject: str | None = None,
        leeway: int = 60,
        rejected: Secret | None = None,
    ) -> Secret:
        _, path = self._cred(address, "/token")
        if rejected is not None:
            body = {
                "scopes": _list(scopes),
                "subject": subject,
                "min_ttl": leeway,
                "rejected": rejected.reveal() if isinstance(rejected, Secret) else rejected,
            }
            out = self._call("POST", path, body=body)
        else:
            query = [*(("scope", s) for s in scopes), ("subject", subject), ("min_ttl", leeway)]
            out = self._call("GET", path, query=query)
        return Secret(str(out["access_token"]))

    def connect(
        self,
        address: str,
        *,
        provider: str,
        client: str,
        scopes: Sequence[str] = (),
        grant: str = "authorization_code",
        port: int = 0,
        open_url: Callable[[str], None] | None = None,
        show_device: Callable[[dict[str, Any]], None] | None = None,
        template_vars: Mapping[str, str] | None = None,
        timeout: float = 300.0,
    ) -> CredentialInfo:
        """Connect through the server: it builds the authorization URL, the redirect goes to
        its public URL (/oauth/callback), and this polls until the connection is stored.
        `port` is unused (there is no local listener)."""
        if grant != "authorization_code":
            raise UsageError(
                f"the {grant} grant runs locally, not through a server",
                hint="connect through the server with the browser flow (authorization_code),"
                " or run it on the server's host against the store (unset CREDWARDEN_URL)",
            )
        if not (0 < timeout <= 3600):
            raise UsageError("the timeout must be between 0 and 3600 seconds")
        _, path = self._cred(address, "/connect")
        body = {
            "provider": provider,
            "client": str(parse_address(client)),
            "scopes": _list(scopes),
            "vars": dict(template_vars or {}),
        }
        start = self._call("POST", path, body=body)
        url, flow = str(start["authorize_url"]), str(start["flow"])
        (open_url or _print_url)(url)
        deadline = time.monotonic() + timeout
        while True:
            state = self._call("GET", f"/v1/connect/{self._seg(flow)}")
            status = state.get("status")
            if status == "done":
                return self.describe(address)
            if status == "failed":
                raise CredentialInvalid(
                    str(state.get("message") or "the connection failed")[:500],
                    hint="see the server's audit log (connect.finish) for the details",
                )
            if status == "expired":
                raise CredentialInvalid(
                    "the authorization did not arrive within the flow's 10 minutes",
                    hint="run connect again and approve sooner",
                )
            if status != "pending":
                raise CredentialInvalid(
                    "the server no longer knows this connect flow",
                    hint="run connect again",
                )
            if time.monotonic() >= deadline:
                raise CredentialInvalid(
                    f"no authorization arrived within {timeout:g} s",
                    hint="open the URL, approve, and make sure the redirect reaches the server"
                    f" ({start.get('redirect_uri') or 'its /oauth/callback'})",
                )
            time.sleep(POLL_S)

    def auth(self, address: str) -> Any:
        """An `httpx.Auth` sending the connection's token (refreshed once on a 401)."""
        from .oauth.httpx_auth import WardenAuth

        return WardenAuth(self, address)

    def test(
        self,
        address: str,
        *,
        template_vars: Mapping[str, str] | None = None,
        timeout: float = 15.0,
    ) -> Any:
        """The server checks it live; returns a livetest.Outcome."""
        from .lifecycle.livetest import Outcome

        _, path = self._cred(address, "/test")
        body = {"vars": dict(template_vars or {}), "timeout": timeout}
        out = self._call("POST", path, body=body, timeout=timeout + 15)
        return Outcome(**{k: v for k, v in dict(out).items() if k in Outcome._fields})

    # -- principals, API tokens, grants --------------------------------------------------

    def add_principal(
        self,
        name: str,
        *,
        type: str = "workflow",
        owner: str | None = None,
        description: str | None = None,
        role: str | None = None,
        pattern: str = "*",
    ) -> PrincipalRecord:
        body = {
            "name": name,
            "type": type,
            "owner": owner,
            "description": description,
            "role": role,
            "pattern": pattern,
        }
        return PrincipalRecord(**self._call("POST", "/v1/principals", body=body))

    def principals(self) -> _list[PrincipalRecord]:
        return [PrincipalRecord(**d) for d in self._call("GET", "/v1/principals")]

    def principal_info(self, name: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/principals/{self._seg(name)}"))

    def remove_principal(self, name: str) -> dict[str, int]:
        return dict(self._call("DELETE", f"/v1/principals/{self._seg(name)}"))

    def issue_token(
        self, name: str, *, expires_in: int | None = None, description: str | None = None
    ) -> tuple[dict[str, Any], Secret]:
        body = {"expires_in": expires_in, "description": description}
        out = dict(self._call("POST", f"/v1/principals/{self._seg(name)}/tokens", body=body))
        token = Secret(str(out.pop("token")))
        return out, token

    def tokens(self, name: str | None = None) -> _list[dict[str, Any]]:
        return [dict(t) for t in self._call("GET", "/v1/tokens", query=[("principal", name)])]

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        return dict(self._call("DELETE", f"/v1/tokens/{self._seg(token_id)}"))

    def grant(
        self,
        name: str,
        pattern: str,
        *,
        actions: str | Sequence[str] | None = None,
        role: str | None = None,
    ) -> Grant:
        body = {"principal": name, "pattern": pattern, "actions": _actions(actions), "role": role}
        return Grant.from_dict(self._call("POST", "/v1/grants", body=body))

    def revoke_grant(self, name: str, pattern: str, *, actions: str | None = None) -> Grant | None:
        body = {"principal": name, "pattern": pattern, "actions": _actions(actions)}
        left = self._call("POST", "/v1/grants/revoke", body=body).get("left")
        return Grant.from_dict(left) if left else None

    def grants(self, name: str | None = None) -> _list[Grant]:
        return [
            Grant.from_dict(d) for d in self._call("GET", "/v1/grants", query=[("principal", name)])
        ]

    # -- audit and keys ------------------------------------------------------------------

    def audit_events(
        self,
        *,
        address: str | None = None,
        principal: str | None = None,
        since: str | None = None,
        limit: int | None = None,
    ) -> _list[AuditEvent]:
        if address is not None:
            address = str(parse_address(address))
        query = [("address", address), ("principal", principal), ("since", since), ("limit", limit)]
        return [AuditEvent(**d) for d in self._call("GET", "/v1/audit", query=query)]

    def verify_audit(self) -> VerifyReport:
        return VerifyReport(**self._call("POST", "/v1/audit/verify", timeout=600))

    def rotate_key(
        self, *, progress: Callable[[int, int], None] | None = None, batch: int = 200
    ) -> dict[str, int]:
        """The server rotates; `progress` is called once, when it is done."""
        answer = self._call("POST", "/v1/keys/rotate", timeout=600)
        out = {str(k): int(v) for k, v in dict(answer).items()}
        if progress is not None:
            done = out.get("rewrapped", 0)
            progress(done, done)
        return out


def _print_url(url: str) -> None:
    print(url, flush=True)


def _reveal(fields: Mapping[str, str | Secret]) -> dict[str, str]:
    return {k: v.reveal() if isinstance(v, Secret) else v for k, v in fields.items()}


def _actions(actions: str | Sequence[str] | None) -> _list[str] | None:
    if actions is None:
        return None
    if isinstance(actions, str):
        return [a.strip() for a in actions.split(",") if a.strip()]
    return [str(a) for a in actions]


def _unavailable(name: str) -> NoReturn:
    raise UsageError(
        f"{name} is not available against a server (CREDWARDEN_URL is set)",
        hint=_NOT_REMOTE_HINT,
    )


def _stub(name: str) -> Callable[..., Any]:
    def stub(*args: Any, **kwargs: Any) -> NoReturn:
        _unavailable(name)

    stub.__name__ = name
    stub.__qualname__ = f"RemoteWarden.{name}"
    stub.__doc__ = f"Not available against a server: raises UsageError ({name} needs the store)."
    return stub


# Every other public operation of the facade needs the store or the master key on this
# machine (connect_finish, refresh_due, flush_token_use, authenticate, init, ...): refuse clearly
# instead of failing on a missing attribute.
for _name, _attr in {k: v for c in reversed(Warden.__mro__) for k, v in vars(c).items()}.items():
    if _name.startswith("_") or _name in vars(RemoteWarden):
        continue
    if isinstance(_attr, classmethod):
        setattr(RemoteWarden, _name, classmethod(_stub(_name)))
    elif isinstance(_attr, staticmethod):
        setattr(RemoteWarden, _name, staticmethod(_stub(_name)))
    elif callable(_attr):
        setattr(RemoteWarden, _name, _stub(_name))
del _name, _attr

__all__ = ["RemoteWarden", "shown_url"]
