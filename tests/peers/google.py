"""A stand-in for Google's OAuth 2.0 token endpoint, for service-account (JWT bearer) grants.

``google-auth`` itself is the client under test here: point a service-account key's
``token_uri`` at :class:`GoogleTokenEndpoint` and ``service_account.Credentials.refresh()``
POSTs ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<RS256 JWT>`` to it.

Typical use::

    from google.auth.transport.requests import Request
    from google.oauth2 import service_account

    with GoogleTokenEndpoint(expires_in=3600) as ep:
        info, private_key = make_service_account_key(ep.token_uri)
        ep.add_service_account(info)           # or ep.add_key(kid, public_key, client_email=...)
        creds = service_account.Credentials.from_service_account_info(
            info, scopes=["https://www.googleapis.com/auth/bigquery"]
        )
        creds.refresh(Request())
        ep.tokens[creds.token]["scope"]        # the verified claims the token was minted for
        # GET ep.tokeninfo_uri?access_token=... -> {"scope", "sub" (if delegated), "expires_in"...}

Behaviour of google-auth 2.63 that the endpoint relies on (checked by ``test_google_peer.py``):

- The assertion's header is ``{"alg": "RS256", "typ": "JWT", "kid": <private_key_id>}``; its
  claims are exactly ``iat``, ``exp`` (= iat + 3600), ``iss`` (client_email), ``aud`` and
  ``scope`` (space-separated), plus ``sub`` after ``with_subject()``. ``aud`` is ALWAYS
  ``https://oauth2.googleapis.com/token``, whatever ``token_uri`` says, so that is the only
  audience accepted here.
- Without scopes, google-auth still calls the endpoint, with ``scope=""`` (answered
  ``400 invalid_scope`` here, as Google does). It uses a self-signed JWT instead of calling
  the endpoint at all when ``universe_domain`` is not ``googleapis.com`` or after
  ``with_always_use_jwt_access(True)``. A delegated credential (``with_subject``) never
  self-signs: it calls the endpoint in the default universe and raises ``RefreshError``
  ("domain wide delegation is not supported for non-default universe domain") elsewhere.
- Retries: 3 attempts in all (so 2 retries) on 500/503/504/408/429, or on any status whose
  ``error``/``error_description`` is ``internal_failure``, ``server_error`` or
  ``temporarily_unavailable``; it sleeps ~1 s (+-10 %) before the 2nd attempt and ~2 s before
  the 3rd. The default failure body of :meth:`GoogleTokenEndpoint.fail_next` avoids those
  error codes, so only the status decides.
- Headers: ``Content-Type: application/x-www-form-urlencoded`` and an ``x-goog-api-client``
  metrics header (``... auth-request-type/at cred-type/sa``).

Error wording is Google's: ``invalid_grant``/"Invalid JWT Signature." (bad signature, unknown
``kid``, wrong ``aud``, non-RS256), ``invalid_grant``/"Invalid grant: account not found"
(unknown ``iss``), ``invalid_grant``/"Invalid JWT: Token must be a short-lived token (60
minutes) and in a reasonable timeframe. ..." (``exp``/``iat``), ``invalid_scope`` (no scope).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = [
    "GOOGLE_TOKEN_AUDIENCE",
    "JWT_BEARER_GRANT",
    "GoogleTokenEndpoint",
    "make_service_account_key",
]

GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"

_INVALID_SIGNATURE = "Invalid JWT Signature."
_ACCOUNT_NOT_FOUND = "Invalid grant: account not found"
_BAD_TIMEFRAME = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
    "timeframe. Check your iat and exp values in the JWT claim."
)
_INVALID_SCOPE = "Invalid OAuth scope or ID token audience provided."
_CLOCK_SKEW = 300  # seconds of leeway for iat/exp, as a real server would allow


def make_service_account_key(
    token_uri: str,
    *,
    client_email: str = "etl@acme-prod.iam.gserviceaccount.com",
    project_id: str = "acme-prod",
    key_size: int = 2048,
    private_key: rsa.RSAPrivateKey | None = None,
) -> tuple[dict[str, str], rsa.RSAPrivateKey]:
    """A service-account JSON key as the Cloud console downloads it, and its private key.

    The RSA key is freshly generated unless ``private_key`` is given (re-using one key for
    several accounts saves ~0.1-0.5 s per 2048-bit key; ``key_size`` must be >= 2048 for
    :meth:`GoogleTokenEndpoint.add_key`). ``private_key`` in the dict is an
    unencrypted PKCS#8 PEM with real newlines (``json.dumps`` writes them as ``\\n``).
    """
    key = private_key or rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    pem = key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    ).decode("ascii")
    client_id = str(10**20 + secrets.randbelow(9 * 10**20))  # 21 digits
    info = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": client_email,
        "client_id": client_id,
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/"
        + urllib.parse.quote(client_email, safe=""),
        "universe_domain": "googleapis.com",
    }
    return info, key


class _Failure:
    __slots__ = ("body", "remaining", "status")

    def __init__(self, remaining: int, status: int, body: Mapping[str, Any]) -> None:
        self.remaining = remaining
        self.status = status
        self.body = dict(body)


class GoogleTokenEndpoint:
    """``POST /token`` (JWT bearer grant) and ``GET /tokeninfo`` on ``127.0.0.1:<free port>``.

    Attributes (read them after ``__enter__``):

    - ``token_uri``: ``http://127.0.0.1:PORT/token``; ``tokeninfo_uri`` likewise.
    - ``requests``: one dict per ``POST /token``, in arrival order: ``status`` (HTTP),
      ``grant_type``, ``header`` (the JWT header, unverified) and ``claims`` (the JWT claims,
      unverified; ``{}`` if undecodable), ``scope``/``sub``/``iss`` (from the claims or
      ``None``), ``error``/``error_description`` (``None`` on success), ``access_token``
      (on success), ``http_headers`` (lower-cased request headers).
    - ``tokens``: issued access token -> the verified claims it was minted for.
    - ``expires_in``: lifetime of new tokens in seconds (settable at any time).
    - ``token_delay``: seconds to sleep before answering ``POST /token`` (settable).
    """

    def __init__(self, *, expires_in: int = 3600, token_delay: float = 0.0) -> None:
        self.expires_in = expires_in
        self.token_delay = token_delay
        self.requests: list[dict[str, Any]] = []
        self.tokens: dict[str, dict[str, Any]] = {}
        self._token_expiry: dict[str, float] = {}
        self._keys: dict[str, tuple[rsa.RSAPublicKey, str]] = {}  # kid -> (key, client_email)
        self._accounts: dict[str, str | None] = {}  # client_email -> client_id
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- registration -------------------------------------------------------------------

    def add_key(
        self,
        private_key_id: str,
        public_key: rsa.RSAPublicKey,
        *,
        client_email: str = "etl@acme-prod.iam.gserviceaccount.com",
        client_id: str | None = None,
    ) -> None:
        """Register a public key (selected by the assertion's ``kid``) of ``client_email``.

        An account may have several keys (rotation); the account exists once it has one.
        Keys below 2048 bits are refused: Google issues 2048-bit keys only, and PyJWT's
        ``InsecureKeyLengthWarning`` would turn into an error under ``filterwarnings = error``.
        """
        if public_key.key_size < 2048:
            raise ValueError(f"RSA key of {public_key.key_size} bits: use at least 2048")
        with self._lock:
            self._keys[private_key_id] = (public_key, client_email)
            if client_id is not None or client_email not in self._accounts:
                self._accounts[client_email] = client_id

    def add_service_account(self, info: Mapping[str, str]) -> None:
        """Register the public half of a service-account JSON key dict."""
        private = serialization.load_pem_private_key(
            info["private_key"].encode(), password=None, unsafe_skip_rsa_key_validation=True
        )
        if not isinstance(private, rsa.RSAPrivateKey):
            raise TypeError("service-account keys are RSA keys")
        self.add_key(
            info["private_key_id"],
            private.public_key(),
            client_email=info["client_email"],
            client_id=info.get("client_id"),
        )

    def remove_key(self, private_key_id: str) -> None:
        """Forget a key (a deleted/rotated-out key); its account stays known."""
        with self._lock:
            self._keys.pop(private_key_id, None)

    def remove_account(self, client_email: str) -> None:
        """Forget an account and all its keys (a deleted service account)."""
        with self._lock:
            self._accounts.pop(client_email, None)
            for kid in [k for k, (_, email) in self._keys.items() if email == client_email]:
                del self._keys[kid]

    def fail_next(self, n: int, status: int = 503, body: Mapping[str, Any] | None = None) -> None:
        """Answer the next ``n`` ``POST /token`` requests with ``status`` (before any checks).

        google-auth makes 3 attempts in all on 500/503/504/408/429 (sleeping ~1 s, then
        ~2 s), so ``fail_next(1)`` costs a refresh about one second and ``fail_next(3)`` makes
        it fail (``RefreshError`` with ``retryable=True``).
        """
        if body is None:
            body = {"error": "unavailable", "error_description": HTTPStatus(status).phrase}
        with self._lock:
            self._failures.append(_Failure(n, status, body))

    def count(self, status: int | None = None) -> int:
        """Number of ``POST /token`` requests so far (only those answered ``status`` if given)."""
        with self._lock:
            return sum(1 for r in self.requests if status is None or r["status"] == status)

    @property
    def token_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    @property
    def tokeninfo_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/tokeninfo"

    # -- lifecycle ----------------------------------------------------------------------

    def __enter__(self) -> GoogleTokenEndpoint:
        endpoint = self

        class Handler(_Handler):
            peer = endpoint

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"google-token-endpoint-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    # -- request handling (called from server threads) ----------------------------------

    def _take_failure(self) -> _Failure | None:
        with self._lock:
            while self._failures:
                failure = self._failures[0]
                if failure.remaining <= 0:
                    self._failures.pop(0)
                    continue
                failure.remaining -= 1
                return failure
        return None

    def _token(
        self, form: Mapping[str, list[str]], http_headers: Mapping[str, str]
    ) -> tuple[int, dict[str, Any]]:
        if self.token_delay:
            time.sleep(self.token_delay)
        grant_type = _one(form, "grant_type")
        assertion = _one(form, "assertion")
        header, claims = _peek(assertion)
        record: dict[str, Any] = {
            "grant_type": grant_type,
            "header": header,
            "claims": claims,
            "iss": claims.get("iss"),
            "scope": claims.get("scope"),
            "sub": claims.get("sub"),
            "http_headers": dict(http_headers),
            "access_token": None,
        }
        failure = self._take_failure()
        if failure is not None:
            status, body = failure.status, dict(failure.body)
        else:
            status, body = self._grant(grant_type, assertion, header, claims)
        record["status"] = status
        record["error"] = body.get("error") if status != 200 else None
        record["error_description"] = body.get("error_description") if status != 200 else None
        if status == 200:
            record["access_token"] = body["access_token"]
        with self._lock:
            self.requests.append(record)
        return status, body

    def _grant(
        self,
        grant_type: str | None,
        assertion: str | None,
        header: Mapping[str, Any],
        unverified: Mapping[str, Any],
    ) -> tuple[int, dict[str, Any]]:
        if grant_type != JWT_BEARER_GRANT:
            return 400, {
                "error": "unsupported_grant_type",
                "error_description": f"Invalid grant_type: {grant_type or ''}",
            }
        if not assertion:
            return 400, {"error": "invalid_request", "error_description": "Missing assertion"}
        iss = unverified.get("iss")
        candidates: list[rsa.RSAPublicKey] = []
        client_id: str | None = None
        with self._lock:
            known_account = isinstance(iss, str) and iss in self._accounts
            if isinstance(iss, str) and known_account:
                kid = header.get("kid")
                if isinstance(kid, str):
                    public, owner = self._keys.get(kid, (None, None))
                    candidates = [public] if public is not None and owner == iss else []
                else:  # no kid: try every key of the account, as Google does
                    candidates = [k for k, e in self._keys.values() if e == iss]
                client_id = self._accounts[iss]
        if not known_account:
            return 400, {"error": "invalid_grant", "error_description": _ACCOUNT_NOT_FOUND}
        claims: dict[str, Any] | None = None
        for key in candidates:
            try:
                claims = jwt.decode(
                    assertion,
                    key,
                    algorithms=["RS256"],
                    audience=GOOGLE_TOKEN_AUDIENCE,
                    options={
                        "require": ["iss", "aud", "iat", "exp"],
                        "verify_exp": False,
                        "verify_iat": False,
                        "verify_nbf": False,
                    },
                )
                break
            except jwt.PyJWTError:
                continue
        if claims is None:
            return 400, {"error": "invalid_grant", "error_description": _INVALID_SIGNATURE}
        now = time.time()
        iat, exp = claims["iat"], claims["exp"]
        if (
            not isinstance(iat, int | float)
            or not isinstance(exp, int | float)
            or exp <= iat
            or exp - iat > 3600
            or iat > now + _CLOCK_SKEW
            or exp < now - _CLOCK_SKEW
        ):
            return 400, {"error": "invalid_grant", "error_description": _BAD_TIMEFRAME}
        scope = claims.get("scope")
        if not isinstance(scope, str) or not scope.split():
            return 400, {"error": "invalid_scope", "error_description": _INVALID_SCOPE}
        token = "ya29." + secrets.token_urlsafe(64)
        with self._lock:
            expires_in = self.expires_in
            self.tokens[token] = dict(claims) | {"client_id": client_id}
            self._token_expiry[token] = now + expires_in
        return 200, {"access_token": token, "expires_in": expires_in, "token_type": "Bearer"}

    def _tokeninfo(self, token: str | None) -> tuple[int, dict[str, Any]]:
        """Google's ``/oauth2/v3/tokeninfo``, simplified: ``sub`` only for delegated tokens."""
        with self._lock:
            claims = self.tokens.get(token or "")
            expiry = self._token_expiry.get(token or "", 0.0)
        remaining = int(expiry - time.time())
        if claims is None or remaining <= 0:
            return 400, {"error": "invalid_token", "error_description": "Invalid Value"}
        info: dict[str, Any] = {
            "azp": claims.get("client_id") or claims["iss"],
            "aud": claims.get("client_id") or claims["iss"],
            "email": claims["iss"],
            "scope": claims["scope"],
            "exp": int(expiry),
            "expires_in": remaining,
            "access_type": "online",
        }
        if claims.get("sub"):
            info["sub"] = claims["sub"]
        return 200, info


class _Handler(BaseHTTPRequestHandler):
    peer: GoogleTokenEndpoint
    server_version = "ESF"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Mapping[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Cache-Control", "no-cache, no-store, max-age=0, must-revalidate")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if url.path == "/token":
            form = urllib.parse.parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
            headers = {k.lower(): v for k, v in self.headers.items()}
            self._send(*self.peer._token(form, headers))
        elif url.path == "/tokeninfo":
            form = urllib.parse.parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
            self._send(*self.peer._tokeninfo(_one(form, "access_token")))
        else:
            self._send(404, {"error": "not_found"})

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/tokeninfo":
            query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
            token = _one(query, "access_token")
            auth = self.headers.get("Authorization", "")
            if token is None and auth.lower().startswith("bearer "):
                token = auth[7:].strip()
            self._send(*self.peer._tokeninfo(token))
        else:
            self._send(404, {"error": "not_found"})


def _one(form: Mapping[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


def _peek(assertion: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The JWT's header and claims, unverified (``{}`` for what does not decode)."""
    if not assertion:
        return {}, {}
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        return {}, {}
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        claims = {}
    return dict(header), dict(claims)
