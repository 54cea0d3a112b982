"""`credwarden connect`, `token` and `test`: the cheap checks, without a real OAuth provider.

The end-to-end flows against a certified OpenID provider live with the peer tests; here a
small loopback "API" answers a test request and, for one happy path, a token request.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from credwarden.providers import save_user_provider

from .conftest import CANARY, CLI, CREDWARDEN, clean_env
from .test_providers_cli import LocalServer, serving

ISSUED = "cwTOKEN-issued-by-the-fake-server-4c1d"
CODE = "the-authorization-code"
CLIENT_SECRET = "client-secret-9f8e"
FUTURE = "2099-01-01T00:00:00.000000Z"


class FakeApi:
    """A loopback API: GET /whoami (or /<tenant>/whoami) and an OAuth token endpoint."""

    def __init__(self) -> None:
        self.valid = {CANARY, ISSUED}
        self.token_requests: list[dict[str, str]] = []
        self.entered = threading.Event()  # a token request arrived
        self.hold: threading.Event | None = None  # if set: token requests wait for it

    def __call__(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        js = {"Content-Type": "application/json"}
        if method == "GET" and path.endswith("/whoami"):
            auth = headers.get("authorization", "")
            if auth.startswith("Bearer ") and auth[7:] in self.valid:
                return 200, js, b'{"ok": true, "user": "alice"}'
            return 401, js, b'{"error": "unauthorized"}'
        if method == "POST" and path == "/token":
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            self.token_requests.append(form)
            self.entered.set()
            if self.hold is not None:
                self.hold.wait(30)
            good = (
                form.get("grant_type") == "authorization_code"
                and form.get("code") == CODE
                and form.get("client_secret") == CLIENT_SECRET
                and len(form.get("code_verifier", "")) >= 43
            )
            if not good:
                return 400, js, b'{"error": "invalid_grant"}'
            answer = {
                "access_token": ISSUED,
                "token_type": "Bearer",
                "expires_in": 3600,
                "refresh_token": "refresh-1",
                "scope": "read write",
            }
            return 200, js, json.dumps(answer).encode()
        return 404, js, b'{"error": "not found"}'


@pytest.fixture
def api() -> Iterator[tuple[FakeApi, LocalServer]]:
    fake = FakeApi()
    with serving(fake) as server:
        yield fake, server


def add_providers(home: Path, base: str) -> None:
    """`local` (oauth2 + api_key, with a test), `bare` (no test), `tenanted` (a template var)."""
    oauth2 = {
        "authorization_url": f"{base}/authorize",
        "token_url": f"{base}/token",
        "scopes_default": ["read"],
        "pkce": "supported",
        "token_auth_method": "client_secret_post",
    }
    test = {
        "method": "GET",
        "url": f"{base}/whoami",
        "headers": {"Authorization": "Bearer {token}"},
        "expect_status": 200,
    }
    save_user_provider(
        home,
        "local",
        {
            "name": "Local API",
            "auth": ["oauth2", "api_key"],
            "docs": f"{base}/docs",
            "oauth2": oauth2,
            "api_key": {"header": "Authorization", "scheme": "Bearer"},
            "test": test,
        },
    )
    save_user_provider(
        home,
        "bare",
        {"name": "Bare", "auth": ["oauth2"], "docs": f"{base}/docs", "oauth2": oauth2},
    )
    save_user_provider(
        home,
        "tenanted",
        {
            "name": "Tenanted",
            "auth": ["api_key"],
            "docs": f"{base}/docs",
            "template_vars": [
                {"name": "tenant", "description": "Your tenant.", "pattern": "[a-z]+"}
            ],
            "api_key": {"header": "Authorization", "scheme": "Bearer"},
            "test": {**test, "url": f"{base}/{{tenant}}/whoami"},
        },
    )


def add_connection(cli: CLI, address: str, provider: str, token: str = ISSUED) -> None:
    r = cli(
        "add",
        address,
        "--kind",
        "oauth2",
        "--provider",
        provider,
        "--stdin",
        "--field",
        "token_type=Bearer",
        "--field",
        f"expires_at={FUTURE}",
        "--field",
        "scope=read write",
        "--field",
        "client=dev/local/app",
        "--field",
        "grant=authorization_code",
        "--field",
        "token_url=http://127.0.0.1:9/token",
        input=token,
    )
    assert r.code == 0, r.err


def add_client(cli: CLI, address: str = "dev/local/app") -> None:
    r = cli(
        "add",
        address,
        "--kind",
        "oauth2_client",
        "--field",
        "client_id=app",
        "--stdin",
        input=CLIENT_SECRET,
    )
    assert r.code == 0, r.err


def stored(cli: CLI, address: str) -> bool:
    r = cli("show", address)
    assert r.code in (0, 4), r.err
    return r.code == 0


# -- help ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["connect", "token", "test"])
def test_help(cli: CLI, command: str) -> None:
    r = cli(command, "--help")
    assert r.code == 0
    assert "Usage:" in r.out


def test_connect_help_explains_the_redirect_port(cli: CLI) -> None:
    out = cli("connect", "--help").out
    for flag in ("--provider", "--client", "--scope", "--no-browser", "--port", "--grant"):
        assert flag in out
    assert "--device" in out and "--var" in out and "--timeout" in out
    assert "registered" in out


# -- connect: refused before any flow ------------------------------------------------------------


def test_connect_missing_client_is_not_found(store: CLI) -> None:
    r = store(
        "connect", "dev/google/me", "--provider", "google", "--client", "dev/google/app",
        "--no-browser",
    )  # fmt: skip
    assert r.code == 4
    assert "dev/google/app" in r.err
    assert r.out == ""
    assert not stored(store, "dev/google/me")


def test_connect_with_a_non_client_credential_is_a_usage_error(store: CLI) -> None:
    r = store(
        "connect", "dev/google/me", "--provider", "google", "--client", "dev/stripe/billing",
        "--no-browser",
    )  # fmt: skip
    assert r.code == 2
    assert "oauth2_client" in r.err
    assert CANARY not in r.out + r.err
    assert not stored(store, "dev/google/me")


def test_connect_unknown_provider_is_not_found(store: CLI) -> None:
    add_client(store, "dev/google/app")
    r = store(
        "connect", "dev/google/me", "--provider", "googel", "--client", "dev/google/app",
        "--no-browser",
    )  # fmt: skip
    assert r.code == 4
    assert "google" in r.err  # suggested
    assert not stored(store, "dev/google/me")


@pytest.mark.parametrize(
    "extra",
    [
        ["--device", "--grant", "client_credentials"],
        ["--grant", "implicit"],
        ["--port", "70000"],
        ["--var", "nope=1"],
        ["--var", "tenant"],
    ],
)
def test_connect_usage_errors(store: CLI, extra: list[str]) -> None:
    add_client(store, "dev/ms/app")
    r = store(
        "connect", "dev/ms/me", "--provider", "microsoft", "--client", "dev/ms/app", *extra
    )  # fmt: skip
    assert r.code == 2, r
    assert r.out == ""
    assert not stored(store, "dev/ms/me")


# -- connect: the browser flow with a loopback token endpoint -----------------------------------


# Started with SIGINT at its default, as in a terminal: a runner that ignores SIGINT (a CI
# job started in the background) would pass SIG_IGN on, and Python then never raises
# KeyboardInterrupt at all. exec keeps the PID, so signals sent to the PID reach credwarden.
_DEFAULT_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL);"
    " os.execv(sys.argv[1], sys.argv[1:])"
)


def _spawn_connect(cli: CLI, address: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _DEFAULT_SIGINT, str(CREDWARDEN), "connect", address,
         "--provider", "local", "--client", "dev/local/app", "--no-browser", "--timeout", "30",
         *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(cli.home),
    )  # fmt: skip


def _start_connect(cli: CLI, address: str, *extra: str) -> tuple[subprocess.Popen[str], str]:
    proc = _spawn_connect(cli, address, *extra)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    return proc, line


def _redirect(url: str, **params: str) -> httpx.Response:
    query = parse_qs(urlsplit(url).query)
    redirect_uri = query["redirect_uri"][0]
    params.setdefault("state", query["state"][0])
    with httpx.Client(trust_env=False, timeout=10) as browser:
        return browser.get(redirect_uri, params=params)


def test_connect_no_browser_prints_the_url_then_stores_the_connection(
    store: CLI, api: tuple[FakeApi, LocalServer]
) -> None:
    fake, server = api
    add_providers(store.home, server.base)
    add_client(store)
    proc, line = _start_connect(store, "dev/local/me", "--scope", "read", "--scope", "write")
    try:
        url = line.rstrip("\n")
        assert url.startswith(f"{server.base}/authorize?")
        assert " " not in url
        query = parse_qs(urlsplit(url).query)
        assert query["client_id"] == ["app"]
        assert query["response_type"] == ["code"]
        assert query["code_challenge_method"] == ["S256"]
        assert query["scope"] == ["read write"]
        assert query["redirect_uri"][0].startswith("http://127.0.0.1:")
        assert query["redirect_uri"][0].endswith("/callback")
        assert _redirect(url, code=CODE).status_code == 200
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert out.startswith("connected dev/local/me (provider local, scopes read write, expires ")
    assert ISSUED not in out + err and CLIENT_SECRET not in out + err
    assert fake.token_requests and fake.token_requests[0]["grant_type"] == "authorization_code"

    r = store("token", "dev/local/me")
    assert (r.code, r.out) == (0, ISSUED + "\n")
    r = store("test", "dev/local/me")
    assert r.code == 0, r.err
    assert r.out.startswith(f"ok  dev/local/me  GET {server.base}/whoami -> 200 (")


def test_connect_denied_stores_nothing(store: CLI, api: tuple[FakeApi, LocalServer]) -> None:
    _, server = api
    add_providers(store.home, server.base)
    add_client(store)
    proc, url = _start_connect(store, "dev/local/me")
    try:
        _redirect(url.strip(), error="access_denied")
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 7
    assert "access_denied" in err
    assert url.startswith(server.base) and out == ""  # the URL line only
    assert not stored(store, "dev/local/me")


def _wait_until(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.005)


def _has_opened_the_store(proc: subprocess.Popen[str], home: Path) -> bool:
    """The command is running: credwarden holds its database open (the URL comes after)."""
    try:
        fds = list(Path(f"/proc/{proc.pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(fd).startswith(str(home)) and os.readlink(fd).endswith(".db"):
                return True
        except OSError:
            continue
    return False


def _threads(proc: subprocess.Popen[str]) -> list[int]:
    return sorted(int(t.name) for t in Path(f"/proc/{proc.pid}/task").iterdir() if t.name.isdigit())


def _parked(proc: subprocess.Popen[str], after: float = 0) -> bool:
    """The main thread sleeps in the kernel on a lock (where the wait for the redirect is)."""
    time.sleep(after)
    try:
        where = Path(f"/proc/{proc.pid}/task/{proc.pid}/wchan").read_text()
    except OSError:
        return False
    return "futex" in where or where.strip() in ("", "0")  # "0": the kernel does not say


def _listener_blocks_sigint(proc: subprocess.Popen[str]) -> bool:
    """The listener thread blocks SIGINT, so the kernel gives a Ctrl-C to the main thread."""
    _wait_until(lambda: len(_threads(proc)) > 1, "the listener thread runs")
    (listener,) = [t for t in _threads(proc) if t != proc.pid]
    status = Path(f"/proc/{proc.pid}/task/{listener}/status").read_text()
    blocked = next(line for line in status.splitlines() if line.startswith("SigBlk:"))
    return bool(int(blocked.split()[1], 16) & (1 << (signal.SIGINT - 1)))


@pytest.mark.parametrize("instant", ["starting", "waiting", "exchanging"])
def test_connect_interrupted_exits_130_and_stores_nothing(
    store: CLI, api: tuple[FakeApi, LocalServer], instant: str
) -> None:
    """Ctrl-C before the URL is printed, while waiting for the browser, and while the code is
    exchanged: exit 130, nothing stored."""
    fake, server = api
    add_providers(store.home, server.base)
    add_client(store)
    fake.hold = threading.Event()
    proc = _spawn_connect(store, "dev/local/me")
    assert proc.stdout is not None and proc.stderr is not None
    browser: threading.Thread | None = None
    try:
        if instant == "starting":
            _wait_until(lambda: _has_opened_the_store(proc, store.home), "the store is open")
            proc.send_signal(signal.SIGINT)
        else:
            url = proc.stdout.readline().strip()
            assert url.startswith(server.base)
            assert "waiting for the redirect" in proc.stderr.readline()
            if instant == "waiting":
                assert _listener_blocks_sigint(proc)
                _wait_until(
                    lambda: _parked(proc) and _parked(proc, after=0.05), "the main thread waits"
                )
                proc.send_signal(signal.SIGINT)
            else:
                browser = threading.Thread(target=_redirect, args=(url,), kwargs={"code": CODE})
                browser.start()
                assert fake.entered.wait(30), "the token request never arrived"
                proc.send_signal(signal.SIGINT)
        # well inside --timeout 30: an interrupt that is only noticed at the timeout fails here
        _out, err = proc.communicate(timeout=20)
    finally:
        fake.hold.set()
        if browser is not None:
            browser.join(30)
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "nothing was stored" in err
    assert "Traceback" not in err
    assert not stored(store, "dev/local/me")


# -- token ---------------------------------------------------------------------------------------


def test_token_on_an_api_key_is_a_usage_error(store: CLI) -> None:
    r = store("token", "dev/stripe/billing")
    assert r.code == 2
    assert r.out == ""
    assert "not an OAuth connection" in r.err
    assert CANARY not in r.err


def test_token_on_a_missing_address_is_not_found(store: CLI) -> None:
    r = store("token", "dev/nothing/here")
    assert (r.code, r.out) == (4, "")


def test_token_prints_the_token_alone(store: CLI) -> None:
    add_connection(store, "dev/local/conn", "local")
    r = store("token", "dev/local/conn")
    assert (r.code, r.out) == (0, ISSUED + "\n")

    r = store("token", "dev/local/conn", "--json", "--min-ttl", "120")
    assert r.code == 0
    assert json.loads(r.out) == {
        "access_token": ISSUED,
        "expires_at": FUTURE,
        "token_type": "Bearer",
    }


def test_token_scopes_must_have_been_granted(store: CLI) -> None:
    add_connection(store, "dev/local/conn", "local")
    r = store("token", "dev/local/conn", "--scope", "read", "--scope", "write")
    assert (r.code, r.out) == (0, ISSUED + "\n")
    r = store("token", "dev/local/conn", "--scope", "read", "--scope", "admin")
    assert r.code == 2
    assert r.out == ""
    assert "admin" in r.err and "connect" in r.err
    assert ISSUED not in r.err


def test_token_does_not_import_rich_or_httpx(store: CLI) -> None:
    add_connection(store, "dev/local/conn", "local")
    probe = (
        "import sys\n"
        "from credwarden.cli.main import main\n"
        "try:\n"
        "    main(['token', 'dev/local/conn'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ('rich', 'httpx', 'authlib') if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=clean_env(store.home),
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [ISSUED, "[]"]


# -- test ----------------------------------------------------------------------------------------


def test_live_test_of_an_api_key(store: CLI, api: tuple[FakeApi, LocalServer]) -> None:
    fake, server = api
    add_providers(store.home, server.base)
    r = store("add", "dev/local/key", "--kind", "api_key", "--provider", "local", "--stdin",
              input=CANARY)  # fmt: skip
    assert r.code == 0, r.err

    r = store("test", "dev/local/key")
    assert r.code == 0, r.err
    assert r.out.startswith(f"ok  dev/local/key  GET {server.base}/whoami -> 200 (")
    assert r.out.rstrip().endswith(" ms)")

    r = store("test", "dev/local/key", "--json")
    result = json.loads(r.out)
    assert r.code == 0
    assert result["ok"] is True and result["status"] == 200 and result["mode"] == "api_key"

    fake.valid.discard(CANARY)  # the provider revoked the key
    r = store("test", "dev/local/key")
    assert r.code == 7
    assert r.out.startswith("FAILED  dev/local/key  GET ")
    assert "401" in r.out and "rejected" in r.out
    for r2 in (r, store("test", "dev/local/key", "--json")):
        assert CANARY not in r2.out + r2.err
    # The outcome is recorded: health `invalid`, one `test` event per check.
    shown = json.loads(store("show", "dev/local/key", "--json").out)
    assert shown["health"] == "invalid"
    events = json.loads(store("audit", "--address", "dev/local/key", "--json").out)
    results = [e["detail"].get("result") for e in events if e["action"] == "test"]
    assert results == ["ok", "ok", "rejected", "rejected"]
    fake.valid.add(CANARY)  # fixed at the provider: the next good check clears it
    assert store("test", "dev/local/key").code == 0
    assert json.loads(store("show", "dev/local/key", "--json").out)["health"] == "ok"


def test_live_test_network_error(store: CLI) -> None:
    with serving(lambda *a: (200, {}, b"")) as server:
        base = server.base
    add_providers(store.home, base)  # the server is gone
    store("add", "dev/local/key", "--kind", "api_key", "--provider", "local", "--stdin",
          input=CANARY)  # fmt: skip
    r = store("test", "dev/local/key")
    assert r.code == 1
    assert "network error" in r.out
    assert CANARY not in r.out + r.err


def test_live_test_template_vars(store: CLI, api: tuple[FakeApi, LocalServer]) -> None:
    _, server = api
    add_providers(store.home, server.base)
    store("add", "dev/t/key", "--kind", "api_key", "--provider", "tenanted", "--stdin",
          input=CANARY)  # fmt: skip
    r = store("test", "dev/t/key")
    assert r.code == 2
    assert "--var tenant=" in r.err
    r = store("test", "dev/t/key", "--var", "tenant=acme")
    assert r.code == 0, r.err
    assert f"GET {server.base}/acme/whoami -> 200" in r.out
    assert store("update", "dev/t/key", "--tag", "tenant=acme").code == 0
    assert store("test", "dev/t/key").code == 0
    assert store("test", "dev/t/key", "--var", "nope=x").code == 2


def test_live_test_of_a_connection_without_a_known_test(store: CLI, tmp_path: Path) -> None:
    add_providers(store.home, "http://127.0.0.1:9")
    add_connection(store, "dev/bare/conn", "bare")
    r = store("test", "dev/bare/conn")
    assert r.code == 0, r.err
    assert "no live test known for provider bare; the token was obtained" in r.out
    assert ISSUED not in r.out + r.err


@pytest.mark.parametrize(
    ("setup", "code", "message"),
    [
        (["add", "dev/misc/s", "--kind", "secret", "--stdin"], 1, "nothing to test"),
        (["add", "dev/misc/s", "--kind", "api_key", "--stdin"], 1, "nothing to test"),
        ([], 4, "no credential"),
    ],
)
def test_live_test_without_anything_to_test(
    store: CLI, setup: list[str], code: int, message: str
) -> None:
    if setup:
        assert store(*setup, input=CANARY).code == 0
    r = store("test", "dev/misc/s")
    assert r.code == code
    assert message in r.out + r.err
    assert CANARY not in r.out + r.err
