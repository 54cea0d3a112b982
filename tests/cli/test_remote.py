"""Remote mode: the real CLI against a real `credwarden serve`, with CREDWARDEN_URL + _TOKEN.

One server per module (on a store made with the local facade); each command runs as a
subprocess whose CREDWARDEN_HOME is empty, so nothing local can answer it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from credwarden import Warden
from credwarden.access.grants import Grant
from credwarden.access.policy import Principal
from credwarden.access.records import PrincipalRecord
from credwarden.audit.chain import AuditEvent, VerifyReport
from credwarden.errors import (
    Conflict,
    CredentialInvalid,
    NotFound,
    PermissionDenied,
    StoreError,
    Unauthenticated,
    UsageError,
    ValidationError,
)
from credwarden.lifecycle.livetest import Outcome
from credwarden.model import Credential, CredentialInfo, VersionInfo
from credwarden.remote import RemoteWarden
from credwarden.secret import Secret
from tests.cli.conftest import CANARY, CREDWARDEN, Run, clean_env
from tests.test_package import HEAVY


class Server(NamedTuple):
    url: str
    home: Path
    empty: Path
    admin: str
    ci: str
    ci_id: str
    revoked: str
    expired: str
    expired_at: float

    @property
    def tokens(self) -> tuple[str, ...]:
        return (self.admin, self.ci, self.revoked, self.expired)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get(url: str, token: str | None = None) -> int:
    import http.client
    from urllib.parse import urlsplit

    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname or "", u.port, timeout=5)
    try:
        conn.request("GET", u.path, headers={"Authorization": f"Bearer {token}"} if token else {})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except OSError:
        return 0
    finally:
        conn.close()


def _local(home: Path) -> Warden:
    return Warden.open(home=str(home), database_url=f"sqlite:///{home / 'credwarden.db'}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("remote")
    home, empty = root / "home", root / "empty"
    empty.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("CREDWARDEN_"):
                mp.delenv(name)
        subprocess.run(
            [str(CREDWARDEN), "init"], env=clean_env(home), check=True, capture_output=True
        )
        port = _free_port()
        log = (root / "serve.log").open("wb")
        proc = subprocess.Popen(
            [str(CREDWARDEN), "serve", "--port", str(port), "--no-scheduler"],
            env=clean_env(home),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 20
            while _get(url + "/healthz") != 200:
                assert proc.poll() is None, (root / "serve.log").read_text()
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.05)
            with _local(home) as w:
                w.add("prod/stripe/billing", "api_key", {"api_key": CANARY})
                w.add("prod/stripe/login", "basic", {"username": "bot", "password": "pw-login"})
                w.add("prod/github/main", "api_key", {"api_key": "ghp-not-granted"})
                w.add_principal("admin", type="user", role="admin")
                w.add_principal("ci", type="workflow")
                w.grant("ci", "prod/stripe/*", actions="read")
                ci_rec, ci = w.issue_token("ci")
                rec, revoked = w.issue_token("ci", description="revoked")
                w.revoke_token(rec["id"])
                _, expired = w.issue_token("ci", expires_in=1)
                expired_at = time.monotonic() + 1.2
                _, admin = w.issue_token("admin")  # last: once it works, all of the above is loaded
            # Few polls: every refused token counts towards the server's failure brake.
            deadline = time.monotonic() + 10
            while _get(url + "/v1/whoami", admin.reveal()) != 200:
                assert time.monotonic() < deadline, "the server did not load the new tokens"
                time.sleep(0.4)
            yield Server(
                url,
                home,
                empty,
                admin.reveal(),
                ci.reveal(),
                ci_rec["id"],
                revoked.reveal(),
                expired.reveal(),
                expired_at,
            )
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


def remote(
    server: Server,
    token: str | None,
    *args: str,
    input: str | None = None,
    url: str | None = None,
) -> Run:
    """The installed `credwarden` with only CREDWARDEN_URL/_TOKEN (and an empty home)."""
    extra = {"CREDWARDEN_URL": url or server.url}
    if token is not None:
        extra["CREDWARDEN_TOKEN"] = token
    proc = subprocess.run(
        [str(CREDWARDEN), *args],
        input=input,
        capture_output=True,
        text=True,
        env=clean_env(server.empty, extra),
        timeout=30,
        check=False,
    )
    for t in server.tokens:  # the token never shows, whatever happens
        assert t not in proc.stdout
        assert t not in proc.stderr
    assert not any(server.empty.iterdir()), "remote mode wrote to the local home"
    return Run(proc.returncode, proc.stdout, proc.stderr)


# -- reading as a workflow -----------------------------------------------------------------------


def test_get_prints_the_value(server: Server) -> None:
    r = remote(server, server.ci, "get", "prod/stripe/billing")
    assert r == Run(0, CANARY + "\n", "")
    assert remote(server, server.ci, "get", "-n", "prod/stripe/billing#api_key").out == CANARY
    # several fields: the kind's main field (asked of the server), or the one named
    assert remote(server, server.ci, "get", "prod/stripe/login").out == "pw-login\n"
    assert remote(server, server.ci, "get", "prod/stripe/login#username").out == "bot\n"
    r = remote(server, server.ci, "get", "--json", "prod/stripe/login")
    assert json.loads(r.out) == {"password": "pw-login", "username": "bot"}
    r = remote(server, server.ci, "get", "prod/stripe/login#nope")
    assert r.code == 4 and "no field 'nope'" in r.err


def test_denied_get_exits_5_and_is_audited_with_the_client(server: Server) -> None:
    r = remote(server, server.ci, "get", "prod/github/main")
    assert r.code == 5, r
    assert r.out == ""
    assert "ci may not read prod/github/main" in r.err
    assert "ghp-not-granted" not in r.err
    with _local(server.home) as w:
        event = w.audit_events(address="prod/github/main")[-1]
    assert (event.principal, event.action, event.result, event.source) == (
        "ci",
        "read",
        "denied",
        "api",
    )
    assert event.client is not None
    assert event.client["ip"] == "127.0.0.1"
    assert event.client["user_agent"].startswith("credwarden-cli/")
    assert event.client["user_agent"].endswith("(cli)")
    assert event.client["token"] == server.ci_id


def test_list_show_headers_and_export_as_a_workflow(server: Server) -> None:
    r = remote(server, server.ci, "list", "--json")
    assert r.code == 0, r
    listed = {d["address"] for d in json.loads(r.out)}
    assert listed == {"prod/stripe/billing", "prod/stripe/login"}  # only what ci may describe
    r = remote(server, server.ci, "show", "prod/stripe/billing")
    assert r.code == 0, r
    assert "api_key" in r.out and "prod/stripe/billing" in r.out
    assert CANARY not in r.out
    r = remote(server, server.ci, "show", "--json", "prod/stripe/login")
    d = json.loads(r.out)
    assert d["fields"]["username"] == "bot" and d["secret_fields"] == ["password"]
    assert [v["version"] for v in d["versions"]] == [1]
    r = remote(server, server.ci, "headers", "prod/stripe/billing")
    assert r.code == 0 and CANARY in r.out
    r = remote(server, server.ci, "export", "--env", "prod", "--only", "prod/stripe/billing")
    assert r.code == 0, r
    assert CANARY in r.out
    assert "prod" in remote(server, server.ci, "environments").out.split()


def test_token_of_a_static_credential_is_a_clear_error(server: Server) -> None:
    r = remote(server, server.ci, "token", "prod/stripe/billing")
    assert r.code == 2, r
    assert "not an OAuth connection" in r.err
    assert CANARY not in r.out + r.err


def test_a_workflow_cannot_write_or_read_the_audit_log(server: Server) -> None:
    r = remote(
        server, server.ci, "add", "prod/stripe/new", "--kind", "api_key", "--stdin", input="x"
    )
    assert r.code == 5, r
    assert remote(server, server.ci, "audit").code == 5


# -- managing as an admin ------------------------------------------------------------------------


def test_admin_lifecycle_add_update_history_rollback_rm(server: Server) -> None:
    a = server.admin
    r = remote(server, a, "add", "dev/app/key", "--kind", "api_key", "--stdin", input="v1-sec\n")
    assert r.code == 0 and "version 1" in r.out, r
    assert (
        remote(server, a, "add", "dev/app/key", "--kind", "api_key", "--stdin", input="x").code == 6
    )
    r = remote(server, a, "update", "dev/app/key", "--stdin", input="v2-sec\n")
    assert r.code == 0 and "now version 2" in r.out, r
    r = remote(server, a, "update", "dev/app/key", "--stdin", "--if-version", "1", input="v3")
    assert r.code == 6, r
    r = remote(server, a, "update", "dev/app/key", "--owner", "payments", "--tag", "team=billing")
    assert r.code == 0, r
    r = remote(server, a, "update", "dev/app/key", "--owner", "", "--json")
    d = json.loads(r.out)
    assert d["owner"] is None and d["tags"] == {"team": "billing"} and d["version"] == 2
    r = remote(server, a, "history", "--json", "dev/app/key")
    assert [v["version"] for v in json.loads(r.out)] == [2, 1]
    assert remote(server, a, "get", "dev/app/key").out == "v2-sec\n"
    r = remote(server, a, "rollback", "dev/app/key", "--to", "1")
    assert r.code == 0 and "now version 3" in r.out, r
    assert remote(server, a, "get", "dev/app/key").out == "v1-sec\n"
    r = remote(server, a, "rm", "-y", "dev/app/key")
    assert r.code == 0, r
    r = remote(server, a, "get", "dev/app/key")
    assert r.code == 4 and "no credential at dev/app/key" in r.err


def test_admin_reads_and_verifies_the_audit_log(server: Server) -> None:
    r = remote(server, server.admin, "audit", "--json", "--principal", "ci", "--limit", "50")
    assert r.code == 0, r
    events = json.loads(r.out)
    assert events and all(e["principal"] == "ci" for e in events)
    r = remote(server, server.admin, "audit", "verify")
    assert r.code == 0 and "intact" in r.out, r


# -- refusals and failures -----------------------------------------------------------------------


def test_revoked_and_expired_tokens_exit_5(server: Server) -> None:
    r = remote(server, server.revoked, "get", "prod/stripe/billing")
    assert r.code == 5 and "revoked" in r.err, r
    time.sleep(max(0.0, server.expired_at - time.monotonic()))
    r = remote(server, server.expired, "get", "prod/stripe/billing")
    assert r.code == 5 and "expired" in r.err, r
    assert CANARY not in r.out


def test_server_down_names_the_url(server: Server) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    r = remote(server, server.ci, "get", "prod/stripe/billing", url=url)
    assert r.code == 1, r
    assert f"cannot reach the credwarden server at {url}" in r.err
    assert "is `credwarden serve` running? check CREDWARDEN_URL" in r.err


def test_url_without_token_is_a_usage_error(server: Server) -> None:
    r = remote(server, None, "list")
    assert r.code == 2, r
    assert "CREDWARDEN_URL is set but CREDWARDEN_TOKEN is not" in r.err
    assert "credwarden principal token NAME" in r.err


def test_remote_get_imports_nothing_heavy(server: Server) -> None:
    probe = (
        "import sys, json, io, contextlib\n"
        "from credwarden.cli.main import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    rc = main(['get', 'prod/stripe/billing'])\n"
        "print(json.dumps({'rc': rc, 'out': out.getvalue(), 'modules': sorted(sys.modules)}))\n"
    )
    env = clean_env(server.empty, {"CREDWARDEN_URL": server.url, "CREDWARDEN_TOKEN": server.ci})
    proc = subprocess.run(
        [sys.executable, "-c", probe], env=env, check=True, capture_output=True, text=True
    )
    result = json.loads(proc.stdout)
    assert (result["rc"], result["out"]) == (0, CANARY + "\n")
    assert "credwarden.remote" in result["modules"]
    loaded = {m.split(".")[0] for m in result["modules"]}
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


# -- the client as a facade ----------------------------------------------------------------------


def test_open_returns_the_client_when_url_is_set(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREDWARDEN_URL", server.url + "/")
    monkeypatch.setenv("CREDWARDEN_TOKEN", server.ci)
    with Warden.open(source="cli") as w:
        assert isinstance(w, RemoteWarden)
        assert w.source == "remote"
        assert w.principal == Principal("ci", "workflow")
        assert w.get("prod/stripe/billing") == Secret(CANARY)
        assert server.ci not in repr(w) and server.url in repr(w)
    with Warden.open(home=str(server.home)) as local:  # an explicit home stays local
        assert not isinstance(local, RemoteWarden)


def test_facade_methods_return_the_local_types(server: Server) -> None:
    with RemoteWarden(server.url, Secret(server.admin)) as w:
        assert server.admin not in repr(w)
        info = w.describe("prod/stripe/login")
        assert isinstance(info, CredentialInfo)
        assert info.fields == {"password": None, "username": "bot"}
        cred = w.read("prod/stripe/login")
        assert isinstance(cred, Credential)
        assert isinstance(cred.values["password"], Secret) and cred.values["username"] == "bot"
        assert cred.reveal() == {"password": "pw-login", "username": "bot"}
        (v,) = w.history("prod/stripe/login")
        assert isinstance(v, VersionInfo) and v.current
        assert all(isinstance(i, CredentialInfo) for i in w.list(env="prod"))
        assert {k: s.reveal() for k, s in w.headers("prod/stripe/billing").items()}
        infos = w.import_entries(
            [("API_URL", "https://api.example.com"), ("DB_PASSWORD", "pw-db")],
            env="dev",
            service="imported",
        )
        assert [i.address for i in infos] == ["dev/imported/api-url", "dev/imported/db-password"]
        assert w.get("dev/imported/db-password") == Secret("pw-db")  # main field, 2 fields
        env = w.env_vars(env="dev", only=["dev/imported/*"])
        assert {k: s.reveal() for k, s in env.items()} == {
            "API_URL": "https://api.example.com",
            "DB_PASSWORD": "pw-db",
        }
        assert "qa" in w.add_environment("qa") and "qa" in w.environments
        assert "staging" in w.protect_environment("staging")
        assert "staging" in w.protected_environments()
        assert "staging" not in w.protect_environment("staging", False)

        rec = w.add_principal("nightly", owner="ops", role="runner", pattern="dev/imported/*")
        assert isinstance(rec, PrincipalRecord) and rec.owner == "ops"
        assert "nightly" in {p.name for p in w.principals()}
        g = w.grant("nightly", "dev/app", actions="describe,use")
        assert isinstance(g, Grant) and g.actions == {"describe", "use"}
        left = w.revoke_grant("nightly", "dev/app", actions="use")
        assert left is not None and left.actions == {"describe"}
        assert w.revoke_grant("nightly", "dev/app/*") is None
        assert [x.pattern for x in w.grants("nightly")] == ["dev/imported/*"]
        trec, tok = w.issue_token("nightly", expires_in=3600, description="t")
        assert isinstance(tok, Secret) and "token" not in trec
        assert trec["id"] in tok.reveal()
        assert [t["id"] for t in w.tokens("nightly")] == [trec["id"]]
        assert w.principal_info("nightly")["tokens"][0]["id"] == trec["id"]
        assert w.revoke_token(trec["id"])["revoked_at"]
        assert w.remove_principal("nightly")["tokens"] == 1

        calls: list[tuple[int, int]] = []
        out = w.rotate_key(progress=lambda done, total: calls.append((done, total)))
        assert out["term"] >= 2 and calls == [(out["rewrapped"], out["rewrapped"])]
        report = w.verify_audit()
        assert isinstance(report, VerifyReport) and report.ok
        events = w.audit_events(address="prod/stripe/login", limit=3)
        assert events and all(isinstance(e, AuditEvent) for e in events)
        outcome = w.test("prod/stripe/billing")
        assert isinstance(outcome, Outcome) and outcome.result == "failed"
        assert w.health()["status"] == "ok"
        with pytest.raises(ValidationError, match="not an OAuth connection"):
            w.access_token("prod/stripe/billing", scopes=["a"], rejected=Secret("old"))
        with pytest.raises(NotFound):
            w.describe("prod/stripe/none")


def test_operations_needing_the_store_raise_usage_errors(server: Server) -> None:
    w = RemoteWarden(server.url, server.ci)  # never connects: every call is refused first
    for grant in ("device_code", "client_credentials"):
        with pytest.raises(UsageError, match="runs locally"):
            w.connect("dev/a/b", provider="github", client="dev/a/c", grant=grant)
    for call in (
        lambda: w.connect_finish("state", {"code": "c"}),
        lambda: w.refresh_due(),
        lambda: w.flush_token_use(),
        lambda: w.authenticate("cwt_x"),
        lambda: w.acting_as(Principal("x")),
        lambda: RemoteWarden.init(),
        lambda: w.store_id,
    ):
        with pytest.raises(UsageError, match="not available against a server"):
            call()
    with pytest.raises(UsageError, match="malformed"):
        RemoteWarden(server.url, "cwt_bad token\r\nX-Injected: 1")
    with pytest.raises(UsageError, match="not an http"):
        RemoteWarden("ftp://example.com", server.ci)
    with pytest.raises(UsageError, match="user name or password"):
        RemoteWarden("https://me:pw@example.com", server.ci)


# -- transport, against a fake server ------------------------------------------------------------


class FakeServer:
    """Answers each connection's first request with the next canned reply, then closes it
    without saying so (as a server whose keep-alive ran out)."""

    def __init__(self, replies: list[tuple[int, str, bytes]]) -> None:
        self.replies = replies
        self.connections = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                if not data or not self.replies:
                    continue
                status, ctype, body = self.replies.pop(0)
                head = f"HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\n"
                conn.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)

    def close(self) -> None:
        self.sock.close()


def _json(obj: Any, status: int = 200) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(obj).encode()


def test_a_get_is_retried_once_on_a_dropped_keep_alive_a_write_never() -> None:
    who = _json({"name": "ci", "type": "workflow", "token": "x"})
    fake = FakeServer([who, who, who])
    try:
        with RemoteWarden(fake.url, "cwt_" + "a" * 40) as w:
            assert w._http.call("GET", "/v1/whoami")["name"] == "ci"
            time.sleep(0.1)  # the fake has closed that connection meanwhile
            assert w._http.call("GET", "/v1/whoami")["name"] == "ci"
            assert fake.connections == 2
            time.sleep(0.1)
            with pytest.raises(StoreError, match="dropped before an answer"):
                w._http.call("POST", "/v1/environments", body={"name": "qa"})
            assert fake.connections == 2
    finally:
        fake.close()


def _err(status: int, code: str, message: str, exit_code: int) -> tuple[int, str, bytes]:
    return _json({"code": code, "message": message, "hint": None, "exit_code": exit_code}, status)


@pytest.mark.parametrize(
    ("reply", "cls", "text"),
    [
        ((502, "text/html", f"<h1>bad gateway {CANARY}</h1>".encode()), StoreError, "HTTP 502"),
        ((200, "text/html", CANARY.encode()), StoreError, "other than JSON"),
        ((401, "text/plain", CANARY.encode()), Unauthenticated, "HTTP 401"),
        (_err(500, "internal", "internal error", 1), StoreError, "failed"),
        (_err(409, "already_exists", "m1", 6), Conflict, "m1"),
        (_err(409, "new_thing", "m2", 6), Conflict, "m2"),
        (_err(409, "oauth_error", "m3", 7), CredentialInvalid, "m3"),
        (_err(429, "rate_limited", "m4", 5), PermissionDenied, "m4"),
        (_err(404, "no_route", "Not Found", 4), StoreError, "no such route"),
    ],
)
def test_error_answers_map_to_the_local_exceptions(
    reply: tuple[int, str, bytes], cls: type[Exception], text: str
) -> None:
    fake = FakeServer([reply])
    try:
        with RemoteWarden(fake.url, "cwt_" + "b" * 40) as w, pytest.raises(cls, match=text) as info:
            w.get("dev/app/key")
        assert CANARY not in str(info.value) and CANARY not in str(getattr(info.value, "hint", ""))
    finally:
        fake.close()


def test_plain_http_to_another_machine_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from credwarden.remote import RemoteWarden

    token = "cwt_0123456789ab_" + "x" * 43
    with pytest.raises(UsageError, match="unencrypted"):
        RemoteWarden("http://10.0.0.5:8470", token)
    RemoteWarden("http://127.0.0.1:8470", token).close()  # loopback: fine
    RemoteWarden("https://cw.example.com", token).close()
    monkeypatch.setenv("CREDWARDEN_ALLOW_HTTP", "1")
    RemoteWarden("http://10.0.0.5:8470", token).close()  # an explicit opt-in
