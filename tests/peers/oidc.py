"""A real OpenID provider on loopback: `oidc-provider` 9.13.3 (Node), started per test.

Nothing here imitates credwarden: the server is the certified third-party implementation
pinned in ``tests/peers/package-lock.json`` and driven by ``oidc_server.mjs``.

Typical use::

    client = confidential_client("app", "s3cret", redirect_uris=["http://127.0.0.1:8765/callback"])
    with OidcProvider(clients=[client], access_ttl=60) as op:
        verifier, challenge = pkce_pair()
        url = op.authorization_url("app", "http://127.0.0.1:8765/callback",
                                   code_challenge=challenge)
        redirect = drive_authorization(url)          # ...?code=...&state=...&iss=...
        op.count("refresh_token")                    # /token requests with that grant

Behaviour of oidc-provider 9.13.3 that the tests rely on (checked by ``test_peers.py``):

- Refresh tokens are issued only when ``offline_access`` is granted, which needs
  ``prompt=consent`` in the authorization request (and ``refresh_token`` in the client's
  ``grant_types``).
- With ``rotate_refresh_token=True`` every refresh returns a new refresh token and marks the
  old one consumed. Presenting a consumed refresh token again answers ``400 invalid_grant``
  (``error_description`` "grant request is invalid"; the ``grant.error`` event's
  ``error_detail`` says "refresh token already used"), destroys it and revokes the whole
  grant: the refresh token issued by the rotation dies too (``invalid_grant``), and so do
  the access tokens of that grant (introspection: ``{"active": false}``). A
  ``grant.revoked`` event is logged.
- Concurrent refreshes with the same token: with the in-memory storage each ``/token``
  request runs to completion without interleaving (no real I/O between "find" and
  "consume"), so exactly ONE wins (200, new pair) and every other one is a reuse: 400
  ``invalid_grant`` and the grant is revoked, which kills the winner's new refresh token
  too. A refresh storm between uncoordinated processes therefore loses the connection
  entirely (measured: 25/25 runs of 4 parallel refreshes). ``token_delay_ms`` (added
  before the request is handled) makes callers overlap on the client side.
- With ``rotate_refresh_token=False`` the same refresh token keeps working.
- Revoking a refresh token revokes its grant (its access tokens too); revoking an access
  token revokes only that token.
- ``client_credentials`` keeps the requested scopes that the server lists in ``scopes`` and
  drops unknown ones silently (``resource=<absolute URI>`` gives an audience-bound token).
- Only ``S256`` PKCE. Storage is in memory: stopping the server loses every token.
"""

from __future__ import annotations

import base64
import datetime
import fcntl
import hashlib
import ipaddress
import json
import os
import secrets
import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from html.parser import HTMLParser
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx

from tests.peers._proc import ServerProcess

PEERS_DIR = Path(__file__).resolve().parent
SERVER_SCRIPT = PEERS_DIR / "oidc_server.mjs"
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_SCOPES = ("openid", "offline_access", "profile", "email", "api:read", "api:write")
READY_TIMEOUT = 15.0
USER_PASSWORD = "x"  # devInteractions accept any password; DOT's user alice has this one

__all__ = [
    "DEFAULT_SCOPES",
    "DEVICE_CODE_GRANT",
    "USER_PASSWORD",
    "OidcProvider",
    "complete_device_authorization",
    "confidential_client",
    "drive_authorization",
    "ensure_installed",
    "introspect",
    "make_test_tls",
    "node_available",
    "node_modules_ready",
    "pkce_pair",
    "public_client",
    "require_node",
]


# --------------------------------------------------------------------------- installation


def node_available() -> bool:
    return shutil.which("node") is not None


def node_modules_ready() -> bool:
    """True when ``npm ci`` has installed the pinned oidc-provider under tests/peers."""
    return (PEERS_DIR / "node_modules" / "oidc-provider" / "package.json").is_file()


def ensure_installed() -> None:
    """Run ``npm ci`` in tests/peers when node_modules is missing (``make test`` does it too).

    Serialised with a lock file so that parallel test processes don't run two ``npm ci``
    at once (each one deletes node_modules first).
    """
    if node_modules_ready():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed: cannot install tests/peers/node_modules")
    key = hashlib.sha256(str(PEERS_DIR).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"credwarden-peers-npm-{key}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if node_modules_ready():
            return
        proc = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=PEERS_DIR,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    if proc.returncode != 0 or not node_modules_ready():
        raise RuntimeError(f"npm ci in {PEERS_DIR} failed:\n{proc.stdout}\n{proc.stderr}")


def require_node() -> None:
    """Skip the calling test when node is missing; under ``CI`` fail instead of skipping."""
    import pytest

    if node_available():
        ensure_installed()
        return
    if os.environ.get("CI"):
        pytest.fail("node is required under CI for the oidc-provider peer tests")
    pytest.skip("node is not installed: oidc-provider peer tests need Node.js")


# --------------------------------------------------------------------------- client metadata


def _is_loopback(uri: str) -> bool:
    host = urlsplit(uri).hostname or ""
    return host in ("127.0.0.1", "::1", "localhost")


def _client(
    client_id: str,
    redirect_uris: Sequence[str],
    grant_types: Sequence[str],
    auth_method: str,
    application_type: str | None,
    extra: dict[str, Any],
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "client_id": client_id,
        "grant_types": list(grant_types),
        "token_endpoint_auth_method": auth_method,
    }
    if "authorization_code" in grant_types:
        meta["response_types"] = ["code"]
        meta["redirect_uris"] = list(redirect_uris)
        if application_type is None:
            # Native clients may use any port on a loopback redirect URI (RFC 8252 7.3).
            uris = list(redirect_uris)
            application_type = "native" if uris and all(map(_is_loopback, uris)) else "web"
    else:
        meta["response_types"] = []
        meta["redirect_uris"] = []
    if application_type is not None:
        meta["application_type"] = application_type
    meta.update(extra)
    return meta


def confidential_client(
    client_id: str,
    secret: str,
    redirect_uris: Sequence[str] = ("http://127.0.0.1/callback",),
    grant_types: Sequence[str] = ("authorization_code", "refresh_token", "client_credentials"),
    auth_method: str = "client_secret_basic",
    *,
    application_type: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """oidc-provider metadata for a client with a secret.

    Loopback redirect URIs make it ``application_type: native``, so any port matches.
    Extra keyword arguments are more client metadata (``scope=...``, ``jwks=...``).
    """
    meta = _client(client_id, redirect_uris, grant_types, auth_method, application_type, extra)
    meta["client_secret"] = secret
    return meta


def public_client(
    client_id: str,
    redirect_uris: Sequence[str] = ("http://127.0.0.1/callback",),
    grant_types: Sequence[str] = ("authorization_code", "refresh_token", DEVICE_CODE_GRANT),
    *,
    application_type: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """oidc-provider metadata for a public client (``token_endpoint_auth_method: none``)."""
    return _client(client_id, redirect_uris, grant_types, "none", application_type, extra)


def pkce_pair() -> tuple[str, str]:
    """A fresh ``(code_verifier, S256 code_challenge)``."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


# --------------------------------------------------------------------------- TLS


def make_test_tls(directory: str | os.PathLike[str]) -> tuple[Path, Path, Path]:
    """Write a throwaway CA and a server certificate for 127.0.0.1/localhost into ``directory``.

    Returns ``(ca_path, cert_path, key_path)`` (PEM). Verify with ``verify=str(ca_path)`` and
    ``trust_env=False`` (this machine's ``REQUESTS_CA_BUNDLE`` would win otherwise).
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    not_before, not_after = now - datetime.timedelta(days=1), now + datetime.timedelta(days=30)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "credwarden test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
                    x509.IPAddress(ipaddress.IPv6Address("::1")),
                    x509.DNSName("localhost"),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    ca_path, cert_path, key_path = out / "ca.pem", out / "server.pem", out / "server-key.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path


# --------------------------------------------------------------------------- the server

TlsArg = bool | Sequence[str | os.PathLike[str]] | None


class OidcProvider:
    """``node oidc_server.mjs`` as a context manager; see the module docstring.

    ``tls``: ``None`` (plain HTTP), ``True`` (make a test CA + certificate in the server's
    temporary folder), ``(ca, cert, key)`` as returned by :func:`make_test_tls`, or
    ``(cert, key)``. Under TLS, ``verify`` is the CA path to give httpx (with
    ``trust_env=False``).
    """

    def __init__(
        self,
        clients: Iterable[dict[str, Any]] = (),
        *,
        access_ttl: int = 60,
        refresh_ttl: int = 14 * 24 * 3600,
        client_credentials_ttl: int | None = None,
        device_code_ttl: int = 600,
        rotate_refresh_token: bool = True,
        issuer_path: str = "",
        device_flow: bool = True,
        tls: TlsArg = None,
        pkce_required: bool = True,
        token_delay_ms: int = 0,
        fail_next_token: int = 0,
        scopes: Sequence[str] = DEFAULT_SCOPES,
        port: int = 0,
        ttl: dict[str, int] | None = None,
        ready_timeout: float = READY_TIMEOUT,
    ) -> None:
        if issuer_path and not issuer_path.startswith("/"):
            issuer_path = "/" + issuer_path
        self.clients = list(clients)
        self.issuer_path = issuer_path.rstrip("/")
        self.issuer = ""
        self.port = 0
        self.ca_path: Path | None = None
        self._ssl_context: ssl.SSLContext | None = None
        self._ready_timeout = ready_timeout
        self._server = ServerProcess("oidc-provider", tmp_prefix="cw-oidc-")

        tls_cfg: dict[str, str] | None = None
        if tls is True:
            self.ca_path, cert, key = make_test_tls(self._server.tmp / "tls")
            tls_cfg = {"cert": str(cert), "key": str(key)}
        elif tls:
            paths = [Path(p) for p in tls]  # type: ignore[union-attr]
            if len(paths) == 3:
                self.ca_path, cert, key = paths
            elif len(paths) == 2:
                cert, key = paths
            else:
                raise ValueError("tls must be True, (ca, cert, key) or (cert, key)")
            tls_cfg = {"cert": str(cert), "key": str(key)}

        ttls: dict[str, int] = {
            "AccessToken": access_ttl,
            "ClientCredentials": client_credentials_ttl or access_ttl,
            "RefreshToken": refresh_ttl,
            "DeviceCode": device_code_ttl,
            "Grant": max(refresh_ttl, 14 * 24 * 3600),
        }
        ttls.update(ttl or {})
        self.config: dict[str, Any] = {
            "port": port,
            "host": "127.0.0.1",
            "issuer_path": self.issuer_path,
            "clients": self.clients,
            "ttl": ttls,
            "rotate_refresh_token": rotate_refresh_token,
            "pkce_required": pkce_required,
            "scopes": list(scopes),
            "device_flow": device_flow,
            "tls": tls_cfg,
            "token_delay_ms": token_delay_ms,
            "fail_next_token": fail_next_token,
            "exit_on_stdin_close": True,
        }

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> OidcProvider:
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is not installed")
        ensure_installed()
        cfg_path = self._server.tmp / "config.json"
        cfg_path.write_text(json.dumps(self.config, indent=2))
        try:
            ready = self._server.start(
                [node, str(SERVER_SCRIPT), str(cfg_path)],
                cwd=PEERS_DIR,
                ready_timeout=self._ready_timeout,
            )
        except BaseException:
            self._server.cleanup()
            raise
        self.port = int(ready["port"])
        self.issuer = str(ready["issuer"])
        return self

    def stop(self) -> None:
        """Stop the server (idempotent), reap it, close its pipes, delete its temp folder."""
        self._server.cleanup()

    def __enter__(self) -> OidcProvider:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server.running

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every JSON line the server printed, parsed (``ready``, ``token``, ``grant.*``)."""
        return self._server.events

    def events_of(self, kind: str) -> list[dict[str, Any]]:
        return self._server.events_of(kind)

    def wait_for_event(
        self, kind: str, timeout: float = 5.0, *, count: int = 1, **match: Any
    ) -> list[dict[str, Any]]:
        """Block until ``count`` events of ``kind`` (with those field values) were logged."""
        return self._server.wait_for_event(kind, timeout, count=count, **match)

    def stderr_text(self) -> str:
        return self._server.stderr_text()

    # -- addresses ---------------------------------------------------------------------------

    @property
    def scheme(self) -> str:
        return urlsplit(self.issuer).scheme

    @property
    def base_url(self) -> str:
        """``scheme://127.0.0.1:PORT`` (no issuer path)."""
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    @property
    def authorization_endpoint(self) -> str:
        return f"{self.issuer}/auth"

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/token"

    @property
    def revocation_url(self) -> str:
        return f"{self.issuer}/token/revocation"

    @property
    def introspection_url(self) -> str:
        return f"{self.issuer}/token/introspection"

    @property
    def device_authorization_url(self) -> str:
        return f"{self.issuer}/device/auth"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/jwks"

    @property
    def userinfo_url(self) -> str:
        return f"{self.issuer}/me"

    @property
    def control_url(self) -> str:
        return f"{self.base_url}/__control"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """httpx's ``verify=`` for this server (use with ``trust_env=False``).

        An SSLContext trusting only the test CA under TLS (httpx 0.28 deprecates a path
        string); ``requests``/MSAL sessions take ``str(ca_path)`` instead.
        """
        if self.ca_path is None:
            return True
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context(cafile=str(self.ca_path))
        return self._ssl_context

    def http_client(self, **kwargs: Any) -> httpx.Client:
        """An httpx.Client that trusts this server (close it, or use ``with``)."""
        kwargs.setdefault("verify", self.verify)
        kwargs.setdefault("trust_env", False)
        kwargs.setdefault("timeout", 10.0)
        return httpx.Client(**kwargs)

    def authorization_url(
        self,
        client_id: str,
        redirect_uri: str,
        *,
        scope: str = "openid offline_access api:read",
        state: str | None = None,
        code_challenge: str | None = None,
        prompt: str | None = "consent",
        **params: str,
    ) -> str:
        """An ``/auth`` URL (``response_type=code``; S256 when a challenge is given)."""
        query: dict[str, str] = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": state or secrets.token_urlsafe(12),
        }
        if code_challenge is not None:
            query["code_challenge"] = code_challenge
            query["code_challenge_method"] = "S256"
        if prompt:
            query["prompt"] = prompt
        query.update(params)
        return f"{self.authorization_endpoint}?{urlencode(query)}"

    # -- observation and control ---------------------------------------------------------------

    def control(self, **changes: Any) -> dict[str, Any]:
        """POST ``changes`` to ``/__control`` (GET when none); returns the server's state.

        Keys: ``fail_next_token`` (answer the next N /token calls with 503),
        ``token_delay_ms`` (latency added to each /token call), ``reset_counters``.
        """
        with self.http_client() as http:
            if changes:
                resp = http.post(self.control_url, json=changes)
            else:
                resp = http.get(self.control_url)
        resp.raise_for_status()
        result: dict[str, Any] = resp.json()
        return result

    def counts(self) -> dict[str, int]:
        """``/token`` requests so far, by ``grant_type`` (``unknown`` when absent)."""
        return dict(self.control()["token_requests_by_grant"])

    def count(self, grant_type: str) -> int:
        """How many ``/token`` requests carried that ``grant_type`` (any outcome)."""
        return int(self.counts().get(grant_type, 0))

    def drive_authorization(self, authorize_url: str, **kwargs: Any) -> str:
        """:func:`drive_authorization` trusting this server's certificate."""
        kwargs.setdefault("verify", self.verify)
        return drive_authorization(authorize_url, **kwargs)

    def complete_device_authorization(self, verification_uri_complete: str, **kwargs: Any) -> None:
        kwargs.setdefault("verify", self.verify)
        complete_device_authorization(verification_uri_complete, **kwargs)


# --------------------------------------------------------------------------- a headless browser


class _Forms(HTMLParser):
    """Collects ``<form>``s (action, method, inputs) and ``<a href>``s of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.links: list[str] = []
        self._current: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._current = {
                "id": a.get("id", ""),
                "action": a.get("action", ""),
                "method": a.get("method", "get").lower(),
                "inputs": {},
                "buttons": {},
            }
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None and a.get("name"):
            if a.get("type", "text").lower() in ("submit", "button", "image", "reset"):
                self._current["buttons"][a["name"]] = a.get("value", "")
            else:
                self._current["inputs"][a["name"]] = a.get("value", "")
        elif tag == "a" and a.get("href"):
            self.links.append(a["href"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def parse_forms(html: str) -> _Forms:
    parser = _Forms()
    parser.feed(html)
    parser.close()
    return parser


def _browser(verify: Any) -> httpx.Client:
    return httpx.Client(follow_redirects=False, trust_env=False, verify=verify, timeout=10.0)


def drive_authorization(
    authorize_url: str,
    *,
    username: str = "alice",
    password: str = USER_PASSWORD,
    consent: bool = True,
    deny: bool = False,
    verify: Any = True,
    max_steps: int = 20,
) -> str:
    """Play the user's browser through oidc-provider's devInteractions, headless.

    Follows ``Location`` headers from ``authorize_url``, signs in on the login page and
    approves the consent page, until a redirect to the client's ``redirect_uri``; returns that
    URL (``?code=...&state=...&iss=...``) without requesting it.

    ``deny=True`` aborts at the first page (``/interaction/<uid>/abort``); ``consent=False``
    signs in and then aborts at the consent page. Both end in ``error=access_denied``.
    """
    query = parse_qs(urlsplit(authorize_url).query)
    redirect_uri = (query.get("redirect_uri") or [""])[0]
    if not redirect_uri:
        raise ValueError("authorize_url has no redirect_uri")

    with _browser(verify) as browser:
        resp = browser.get(authorize_url)
        for _ in range(max_steps):
            if resp.is_redirect:
                location = urljoin(str(resp.url), resp.headers["location"])
                if location.startswith(redirect_uri):
                    return location
                resp = browser.get(location)
                continue
            if resp.status_code != 200:
                raise RuntimeError(
                    f"authorization failed at {resp.url}: {resp.status_code} {resp.text[:800]}"
                )
            page = parse_forms(resp.text)
            form = next((f for f in page.forms if "prompt" in f["inputs"]), None)
            if form is None:
                raise RuntimeError(f"no interaction form at {resp.url}: {resp.text[:800]}")
            prompt = form["inputs"]["prompt"]
            action = urljoin(str(resp.url), form["action"])
            if deny or (prompt == "consent" and not consent):
                abort = next((link for link in page.links if link.endswith("/abort")), None)
                resp = browser.get(urljoin(str(resp.url), abort or f"{resp.url.path}/abort"))
                continue
            data = dict(form["inputs"])
            if prompt == "login":
                data.update(login=username, password=password)
            resp = browser.post(action, data=data)
        raise RuntimeError(f"no redirect to {redirect_uri} after {max_steps} steps")


def complete_device_authorization(
    verification_uri_complete: str,
    *,
    username: str = "alice",
    password: str = USER_PASSWORD,
    deny: bool = False,
    verify: Any = True,
    max_steps: int = 20,
) -> None:
    """Play the user who opens ``verification_uri_complete`` and approves (or aborts)."""
    with _browser(verify) as browser:
        resp = browser.get(verification_uri_complete)
        for _ in range(max_steps):
            if resp.is_redirect:
                resp = browser.get(urljoin(str(resp.url), resp.headers["location"]))
                continue
            if resp.status_code != 200:
                raise RuntimeError(
                    f"device flow failed at {resp.url}: {resp.status_code} {resp.text[:800]}"
                )
            if deny and "interrupted" in resp.text:  # "The Sign-in request was interrupted"
                return
            page = parse_forms(resp.text)
            if not page.forms:
                if "Sign-in Success" in resp.text:
                    return
                raise RuntimeError(f"unexpected device flow page at {resp.url}: {resp.text[:800]}")
            form = page.forms[0]
            data = dict(form["inputs"])
            action = urljoin(str(resp.url), form["action"])
            prompt = data.get("prompt")
            if deny and "confirm" in data:  # "is this the code on your device?" -> [ Abort ]
                del data["confirm"]
                data["abort"] = "yes"
            elif deny and prompt is not None:
                abort = next((link for link in page.links if link.endswith("/abort")), None)
                resp = browser.get(urljoin(str(resp.url), abort or f"{resp.url.path}/abort"))
                continue
            elif prompt == "login":
                data.update(login=username, password=password)
            resp = browser.post(action, data=data)
        raise RuntimeError(f"device flow did not finish after {max_steps} steps")


# --------------------------------------------------------------------------- token helpers


def introspect(provider: OidcProvider, token: str, client_id: str, secret: str) -> dict[str, Any]:
    """RFC 7662 introspection at ``/token/introspection`` (``{"active": false}`` when dead)."""
    with provider.http_client() as http:
        resp = http.post(
            provider.introspection_url, data={"token": token}, auth=(client_id, secret)
        )
    resp.raise_for_status()
    result: dict[str, Any] = resp.json()
    return result
