"""`credwarden providers list|show|add`: the catalog from the command line, no store needed.

`providers add --discovery` is run against small HTTP servers on 127.0.0.1 started here.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from .conftest import CLI

# (method, path, headers, body) -> (status, headers, body)
Handler = Callable[[str, str, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]


class LocalServer:
    """An HTTP(S) server on 127.0.0.1 answering every request with `handler`."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        outer = self
        self.requests: list[tuple[str, str, dict[str, str]]] = []

        class _H(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                outer.requests.append((self.command, self.path, headers))
                status, extra, payload = handler(self.command, self.path, headers, body)
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> LocalServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.thread.join()
        self.httpd.server_close()


@contextmanager
def serving(handler: Handler, tls: ssl.SSLContext | None = None) -> Iterator[LocalServer]:
    with LocalServer(handler, tls) as server:
        yield server


def discovery(base: str, **overrides: Any) -> dict[str, Any]:
    """A realistic OpenID Provider metadata document (as Keycloak / Auth0 / Okta publish)."""
    doc: dict[str, Any] = {
        "issuer": base,
        "authorization_endpoint": f"{base}/oauth2/authorize",
        "token_endpoint": f"{base}/oauth2/token",
        "userinfo_endpoint": f"{base}/oauth2/userinfo",
        "jwks_uri": f"{base}/oauth2/jwks",
        "revocation_endpoint": f"{base}/oauth2/revoke",
        "introspection_endpoint": f"{base}/oauth2/introspect",
        "device_authorization_endpoint": f"{base}/oauth2/device",
        "scopes_supported": ["openid", "profile", "email", "offline_access", "api:read"],
        "response_types_supported": ["code", "id_token", "code id_token"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code",
        ],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "iss", "email", "name"],
    }
    doc.update(overrides)
    return {k: v for k, v in doc.items() if v is not None}


def json_doc(make: Callable[[str], dict[str, Any]]) -> Callable[[LocalServer], Handler]:
    """A handler serving make(base) as application/json at the well-known path."""

    def bind(server: LocalServer) -> Handler:
        def handler(
            method: str, path: str, headers: dict[str, str], body: bytes
        ) -> tuple[int, dict[str, str], bytes]:
            if path != "/.well-known/openid-configuration":
                return 404, {"Content-Type": "application/json"}, b'{"error":"not found"}'
            payload = json.dumps(make(server.base)).encode()
            return 200, {"Content-Type": "application/json; charset=utf-8"}, payload

        return handler

    return bind


@contextmanager
def discovery_server(make: Callable[[str], dict[str, Any]] = discovery) -> Iterator[LocalServer]:
    holder: dict[str, Handler] = {}
    with serving(lambda *a: holder["h"](*a)) as server:
        holder["h"] = json_doc(make)(server)
        yield server


def well_known(server: LocalServer) -> str:
    return server.base + "/.well-known/openid-configuration"


def user_file(cli: CLI, slug: str) -> Path:
    return cli.home / "providers" / f"{slug}.yaml"


# -- list / show ---------------------------------------------------------------------------------


def test_list_table_and_json(cli: CLI) -> None:
    r = cli("providers", "list")
    assert r.code == 0, r.err
    header = r.out.splitlines()[0].split()
    assert header == ["SLUG", "NAME", "AUTH", "CATEGORIES"]
    github = next(line for line in r.out.splitlines() if line.startswith("github "))
    assert "GitHub" in github and "oauth2" in github and "api_key" in github

    r = cli("providers", "list", "--json")
    assert r.code == 0
    rows = json.loads(r.out)
    assert [p["slug"] for p in rows] == sorted(p["slug"] for p in rows)
    by_slug = {p["slug"]: p for p in rows}
    assert set(by_slug["google"]) == {"slug", "name", "auth", "categories", "docs"}
    assert by_slug["google"]["auth"] == ["oauth2", "service_account"]
    assert by_slug["stripe"]["docs"].startswith("https://")


def test_list_filters(cli: CLI) -> None:
    r = cli("providers", "list", "--json", "--auth", "basic")
    slugs = {p["slug"] for p in json.loads(r.out)}
    assert "twilio" in slugs and "github" not in slugs
    assert all("basic" in p["auth"] for p in json.loads(r.out))

    r = cli("providers", "list", "--json", "--category", "identity", "--auth", "oauth2")
    rows = json.loads(r.out)
    assert rows and all("identity" in p["categories"] for p in rows)
    assert "google" in {p["slug"] for p in rows}

    r = cli("providers", "list", "--auth", "telepathy")
    assert r.code == 2

    r = cli("providers", "list", "--category", "no-such-category")
    assert r.code == 0 and r.out == ""
    assert "no providers match" in r.err


def test_show_human_and_json(cli: CLI) -> None:
    r = cli("providers", "show", "microsoft")
    assert r.code == 0, r.err
    out = r.out
    for expected in (
        "Microsoft",
        "tenant",  # template var
        "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
        "offline_access",
        "pkce:",
        "client_secret_post",
        "rotates yes",
        "quirks:",
        "GET https://graph.microsoft.com/v1.0/me",
    ):
        assert expected in out, expected

    r = cli("providers", "show", "github")
    assert "pattern:" in r.out and "GITHUB_TOKEN" in r.out and "revoke:" in r.out

    r = cli("providers", "show", "github", "--json")
    assert r.code == 0
    entry = json.loads(r.out)
    assert entry["name"] == "GitHub"
    assert entry["oauth2"]["token_url"] == "https://github.com/login/oauth/access_token"
    assert entry["api_key"]["env_var"] == "GITHUB_TOKEN"


def test_show_unknown_slug_is_not_found_with_suggestions(cli: CLI) -> None:
    r = cli("providers", "show", "githb")
    assert r.code == 4
    assert r.out == ""
    assert "githb" in r.err and "github" in r.err  # did you mean


def test_help(cli: CLI) -> None:
    for args in (
        ["providers"],
        ["providers", "list"],
        ["providers", "show"],
        ["providers", "add"],
    ):
        r = cli(*args, "--help")
        assert r.code == 0, args
        assert "Usage:" in r.out
    assert "--discovery" in cli("providers", "add", "--help").out


def test_providers_need_no_store(cli: CLI) -> None:
    """The catalog is data: no `init`, no master key."""
    assert not cli.home.exists()
    assert cli("providers", "list", "--json").code == 0
    assert cli("providers", "show", "slack").code == 0


# -- add --discovery -----------------------------------------------------------------------------


def test_add_from_discovery(cli: CLI) -> None:
    with discovery_server() as server:
        r = cli("providers", "add", "acme-id", "--discovery", well_known(server))
        base = server.base
    assert r.code == 0, r.err
    path = user_file(cli, "acme-id")
    assert str(path) in r.out
    assert "oauth2" in r.out and f"{base}/oauth2/token" in r.out

    saved = yaml.safe_load(path.read_text())
    entry = saved["acme-id"]
    assert entry["auth"] == ["oauth2", "oauth2_client_credentials"]
    assert entry["oauth2"]["authorization_url"] == f"{base}/oauth2/authorize"
    assert entry["oauth2"]["token_url"] == f"{base}/oauth2/token"
    assert entry["oauth2"]["pkce"] == "supported"
    assert entry["oauth2"]["token_auth_method"] == "client_secret_basic"
    assert "offline_access" in entry["oauth2"]["scopes_default"]
    assert entry["test"]["url"] == f"{base}/oauth2/userinfo"

    # It is part of the catalog now.
    r = cli("providers", "show", "acme-id", "--json")
    assert r.code == 0 and json.loads(r.out)["oauth2"]["issuer"] == base
    r = cli("providers", "list", "--json")
    assert "acme-id" in {p["slug"] for p in json.loads(r.out)}


def test_add_existing_needs_replace(cli: CLI) -> None:
    with discovery_server() as server:
        url = well_known(server)
        assert cli("providers", "add", "acme", "--discovery", url).code == 0
        before = user_file(cli, "acme").read_text()
        fetched = len(server.requests)

        r = cli("providers", "add", "acme", "--discovery", url, "--name", "Other")
        assert r.code == 6
        assert "--replace" in r.err
        assert user_file(cli, "acme").read_text() == before
        assert len(server.requests) == fetched  # refused before fetching

        r = cli("providers", "add", "acme", "--discovery", url, "--name", "Acme ID", "--replace")
        assert r.code == 0, r.err
    assert yaml.safe_load(user_file(cli, "acme").read_text())["acme"]["name"] == "Acme ID"


def test_add_over_builtin_needs_replace(cli: CLI) -> None:
    with discovery_server() as server:
        r = cli("providers", "add", "github", "--discovery", well_known(server))
        assert r.code == 6
        assert "built in" in r.err
        assert not user_file(cli, "github").exists()
        assert server.requests == []


def test_add_html_answer_is_an_error_and_saves_nothing(cli: CLI) -> None:
    page = b"<!doctype html><html><body><h1>Welcome to Acme</h1></body></html>"
    with serving(lambda *a: (200, {"Content-Type": "text/html; charset=utf-8"}, page)) as server:
        r = cli("providers", "add", "acme", "--discovery", server.base + "/")
    assert r.code == 1
    assert "HTML" in r.err
    assert ".well-known/openid-configuration" in r.err  # the hint says what to fetch
    assert not user_file(cli, "acme").exists()


def test_add_non_json_answer_is_an_error(cli: CLI) -> None:
    with serving(lambda *a: (200, {"Content-Type": "text/plain"}, b"issuer=acme")) as server:
        r = cli("providers", "add", "acme", "--discovery", well_known(server))
    assert r.code == 1
    assert "JSON" in r.err
    assert not user_file(cli, "acme").exists()


def test_add_http_error_status(cli: CLI) -> None:
    with discovery_server() as server:
        r = cli("providers", "add", "acme", "--discovery", server.base + "/nope")
    assert r.code == 1
    assert "404" in r.err
    assert not user_file(cli, "acme").exists()


def test_add_missing_token_endpoint_names_the_field(cli: CLI) -> None:
    with discovery_server(lambda base: discovery(base, token_endpoint=None)) as server:
        r = cli("providers", "add", "acme", "--discovery", well_known(server))
    assert r.code in (1, 2)
    assert "token_endpoint" in r.err
    assert not user_file(cli, "acme").exists()


def test_add_follows_redirects_only_on_the_same_host(cli: CLI) -> None:
    def handler(
        method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if path == "/old":
            return 301, {"Location": "/.well-known/openid-configuration"}, b""
        if path == "/away":
            port = holder["server"].httpd.server_address[1]
            target = f"http://localhost:{port}/.well-known/openid-configuration"
            return 302, {"Location": target}, b""
        base = holder["server"].base
        return 200, {"Content-Type": "application/json"}, json.dumps(discovery(base)).encode()

    holder: dict[str, LocalServer] = {}
    with serving(handler) as server:
        holder["server"] = server
        r = cli("providers", "add", "acme", "--discovery", server.base + "/old")
        assert r.code == 0, r.err
        r = cli("providers", "add", "elsewhere", "--discovery", server.base + "/away")
    assert r.code == 1
    assert "another host" in r.err
    assert not user_file(cli, "elsewhere").exists()


def test_add_refuses_a_huge_document(cli: CLI) -> None:
    huge = b'{"issuer": "' + b"x" * (1024 * 1024 + 10) + b'"}'
    with serving(lambda *a: (200, {"Content-Type": "application/json"}, huge)) as server:
        r = cli("providers", "add", "acme", "--discovery", well_known(server))
    assert r.code == 1
    assert "1 MiB" in r.err


def test_add_unreachable_and_bad_urls(cli: CLI) -> None:
    with serving(lambda *a: (200, {}, b"")) as server:
        closed = server.base
    r = cli("providers", "add", "acme", "--discovery", closed + "/.well-known/openid-configuration")
    assert r.code == 1
    assert "cannot fetch" in r.err

    # Plain http only on loopback; no request is made.
    r = cli("providers", "add", "acme", "--discovery", "http://id.example.com/.well-known/x")
    assert r.code == 2
    assert "https" in r.err

    r = cli("providers", "add", "Bad Slug!", "--discovery", closed)
    assert r.code == 2
    assert not (cli.home / "providers").exists()


def test_add_with_private_ca(cli: CLI, tmp_path: Path) -> None:
    from tests.peers.oidc import make_test_tls

    ca, cert, key = make_test_tls(tmp_path / "tls")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    holder: dict[str, Handler] = {}
    with serving(lambda *a: holder["h"](*a), tls=context) as server:
        holder["h"] = json_doc(discovery)(server)
        url = well_known(server)
        r = cli("providers", "add", "acme", "--discovery", url)
        assert r.code == 1  # the test CA is not trusted by default
        assert not user_file(cli, "acme").exists()
        r = cli("providers", "add", "acme", "--discovery", url, "--ca-bundle", str(ca))
    assert r.code == 0, r.err
    saved = yaml.safe_load(user_file(cli, "acme").read_text())["acme"]
    assert saved["oauth2"]["token_url"].startswith("https://127.0.0.1:")
