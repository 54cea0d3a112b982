"""django-oauth-toolkit on loopback: a second, independent OAuth 2 provider for the tests.

``DotProvider`` runs ``dot_server.py`` (Django's threaded dev server, a SQLite file database
in a temporary folder) with a user ``alice``/``x`` and two applications:

- ``auth_code``: confidential, authorization code + refresh, PKCE required, redirect URIs
  ``http://127.0.0.1/callback`` and ``http://localhost/callback`` (DOT 3.x ignores the port
  of loopback redirect URIs, RFC 8252 7.3);
- ``client_credentials``: confidential, client credentials (DOT allows one grant type per
  application).

Settings: ``ROTATE_REFRESH_TOKEN``, ``REFRESH_TOKEN_GRACE_PERIOD_SECONDS=0``,
``REFRESH_TOKEN_REUSE_PROTECTION`` (re-using a rotated refresh token revokes the whole token
family: the refresh token issued by the rotation stops working too), ``PKCE_REQUIRED``.
Scopes: ``read write api:read api:write offline_access introspection`` (unknown scopes are an
``invalid_scope`` error here, unlike oidc-provider). Refresh tokens come with every
authorization-code exchange, no ``offline_access`` needed.

    with DotProvider(access_ttl=60) as dot:
        url = dot.authorization_url(redirect_uri, code_challenge=challenge)
        redirect = dot.drive_authorization(url)   # ...?code=...&state=...
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx

from tests.peers._proc import ServerProcess
from tests.peers.oidc import USER_PASSWORD, parse_forms

SERVER_SCRIPT = Path(__file__).resolve().parent / "dot_server.py"
READY_TIMEOUT = 20.0
DEFAULT_REDIRECT_URIS = ("http://127.0.0.1/callback", "http://localhost/callback")

__all__ = ["DotProvider", "drive_dot_authorization"]


class DotProvider:
    """``dot_server.py`` as a context manager (``start()``/``stop()`` also work)."""

    def __init__(
        self,
        *,
        access_ttl: int = 60,
        refresh_ttl: int | None = None,
        rotate_refresh_token: bool = True,
        pkce_required: bool = True,
        redirect_uris: Sequence[str] = DEFAULT_REDIRECT_URIS,
        username: str = "alice",
        password: str = USER_PASSWORD,
        port: int = 0,
        ready_timeout: float = READY_TIMEOUT,
    ) -> None:
        self.username = username
        self.password = password
        self.auth_code_client_id = "cw-authcode-" + secrets.token_hex(4)
        self.auth_code_client_secret = secrets.token_urlsafe(32)
        self.cc_client_id = "cw-cc-" + secrets.token_hex(4)
        self.cc_client_secret = secrets.token_urlsafe(32)
        self.redirect_uris = list(redirect_uris)
        self.port = 0
        self._ready_timeout = ready_timeout
        self._server = ServerProcess("django-oauth-toolkit", tmp_prefix="cw-dot-")
        self.config: dict[str, Any] = {
            "port": port,
            "db_path": str(self._server.tmp / "dot.sqlite3"),
            "access_ttl": access_ttl,
            "refresh_ttl": refresh_ttl,
            "rotate_refresh_token": rotate_refresh_token,
            "pkce_required": pkce_required,
            "exit_on_stdin_close": True,
            "users": [{"username": username, "password": password}],
            "apps": [
                {
                    "name": "credwarden auth code",
                    "client_id": self.auth_code_client_id,
                    "client_secret": self.auth_code_client_secret,
                    "client_type": "confidential",
                    "grant_type": "authorization-code",
                    "redirect_uris": self.redirect_uris,
                },
                {
                    "name": "credwarden client credentials",
                    "client_id": self.cc_client_id,
                    "client_secret": self.cc_client_secret,
                    "client_type": "confidential",
                    "grant_type": "client-credentials",
                    "redirect_uris": [],
                },
            ],
        }

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> DotProvider:
        cfg_path = self._server.tmp / "config.json"
        cfg_path.write_text(json.dumps(self.config, indent=2))
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        try:
            ready = self._server.start(
                [sys.executable, str(SERVER_SCRIPT), str(cfg_path)],
                cwd=self._server.tmp,
                env=env,
                ready_timeout=self._ready_timeout,
            )
        except BaseException:
            self._server.cleanup()
            raise
        self.port = int(ready["port"])
        return self

    def stop(self) -> None:
        """Stop the server (idempotent), reap it, close its pipes, delete its database."""
        self._server.cleanup()

    def __enter__(self) -> DotProvider:
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
        return self._server.events

    def stderr_text(self) -> str:
        return self._server.stderr_text()

    # -- addresses ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def authorize_url(self) -> str:
        return f"{self.base_url}/o/authorize/"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/o/token/"

    @property
    def revoke_url(self) -> str:
        return f"{self.base_url}/o/revoke_token/"

    @property
    def introspect_url(self) -> str:
        return f"{self.base_url}/o/introspect/"

    @property
    def login_url(self) -> str:
        return f"{self.base_url}/accounts/login/"

    @property
    def control_url(self) -> str:
        return f"{self.base_url}/__control"

    def http_client(self, **kwargs: Any) -> httpx.Client:
        kwargs.setdefault("trust_env", False)
        kwargs.setdefault("timeout", 10.0)
        return httpx.Client(**kwargs)

    def authorization_url(
        self,
        redirect_uri: str,
        *,
        client_id: str | None = None,
        scope: str = "read api:read",
        state: str | None = None,
        code_challenge: str | None = None,
        **params: str,
    ) -> str:
        query: dict[str, str] = {
            "response_type": "code",
            "client_id": client_id or self.auth_code_client_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": state or secrets.token_urlsafe(12),
        }
        if code_challenge is not None:
            query["code_challenge"] = code_challenge
            query["code_challenge_method"] = "S256"
        query.update(params)
        return f"{self.authorize_url}?{urlencode(query)}"

    # -- observation ---------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        with self.http_client() as http:
            resp = http.get(self.control_url)
        resp.raise_for_status()
        return dict(resp.json()["token_requests_by_grant"])

    def count(self, grant_type: str) -> int:
        """How many ``/o/token/`` requests carried that ``grant_type`` (any outcome)."""
        return int(self.counts().get(grant_type, 0))

    def introspect(self, token: str) -> dict[str, Any]:
        """RFC 7662 at ``/o/introspect/``, authenticated as the client-credentials app."""
        with self.http_client() as http:
            resp = http.post(
                self.introspect_url,
                data={"token": token},
                auth=(self.cc_client_id, self.cc_client_secret),
            )
        resp.raise_for_status()
        result: dict[str, Any] = resp.json()
        return result

    def drive_authorization(
        self,
        url: str,
        username: str | None = None,
        password: str | None = None,
        *,
        deny: bool = False,
    ) -> str:
        return drive_dot_authorization(
            url,
            username=username or self.username,
            password=password or self.password,
            deny=deny,
        )


def drive_dot_authorization(
    url: str,
    *,
    username: str = "alice",
    password: str = USER_PASSWORD,
    deny: bool = False,
    max_steps: int = 12,
) -> str:
    """Play the user's browser at DOT: Django's login form, then the consent form.

    Returns the redirect to the client's ``redirect_uri`` (``?code=...&state=...``, or
    ``?error=access_denied`` with ``deny=True``) without requesting it.
    """
    redirect_uri = (parse_qs(urlsplit(url).query).get("redirect_uri") or [""])[0]
    if not redirect_uri:
        raise ValueError("authorization URL has no redirect_uri")
    with httpx.Client(follow_redirects=False, trust_env=False, timeout=10.0) as browser:
        resp = browser.get(url)
        for _ in range(max_steps):
            if resp.is_redirect:
                location = urljoin(str(resp.url), resp.headers["location"])
                if location.startswith(redirect_uri):
                    return location
                resp = browser.get(location)
                continue
            if resp.status_code != 200:
                raise RuntimeError(
                    f"DOT answered {resp.status_code} at {resp.url}: {resp.text[:800]}"
                )
            page = parse_forms(resp.text)
            form = next((f for f in page.forms if f["method"] == "post"), None)
            if form is None:
                raise RuntimeError(f"no form at {resp.url}: {resp.text[:800]}")
            data = dict(form["inputs"])
            if "username" in data:
                data.update(username=username, password=password)
            elif not deny:
                data["allow"] = form["buttons"].get("allow", "Authorize")
            resp = browser.post(urljoin(str(resp.url), form["action"]), data=data)
        raise RuntimeError(f"no redirect to {redirect_uri} after {max_steps} steps")
