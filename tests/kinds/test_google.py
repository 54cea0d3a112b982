"""Google service accounts against a local JWT-bearer token endpoint that checks the RS256
assertion with the key's public half (tests/peers/google.py): google-auth does the minting."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from credwarden import CredentialInvalid, ValidationError, Warden
from tests.peers.google import GoogleTokenEndpoint, make_service_account_key
from tests.rawdb import stored_bytes

ADDR = "prod/gcp/etl"
BQ = "https://www.googleapis.com/auth/bigquery"
GCS = "https://www.googleapis.com/auth/devstorage.read_only"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[GoogleTokenEndpoint]:
    with GoogleTokenEndpoint() as ep:
        yield ep


@pytest.fixture(scope="module")
def key(endpoint: GoogleTokenEndpoint) -> dict[str, str]:
    info, _ = make_service_account_key(endpoint.token_uri)
    endpoint.add_service_account(info)
    return info


def tokeninfo(endpoint: GoogleTokenEndpoint, token: str) -> dict[str, Any]:
    with httpx.Client(trust_env=False) as http:
        r = http.get(endpoint.tokeninfo_uri, params={"access_token": token})
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def test_import_validates_and_shows_no_key_material(warden: Warden, key: dict[str, str]) -> None:
    info = warden.add(ADDR, "google_service_account", {"key_json": json.dumps(key)})
    assert info.fields["client_email"] == key["client_email"]
    assert info.fields["private_key_id"] == key["private_key_id"]
    assert info.fields["project_id"] == "acme-prod"
    assert info.fields["key_json"] is None  # secret: masked
    assert info.rotate_every == 90 * 86400 and info.health == "ok"
    shown = json.dumps(warden.describe(ADDR).to_dict())
    assert "PRIVATE KEY" not in shown and key["private_key"][40:80] not in shown


def test_tokens_are_minted_for_scopes_cached_and_separate(
    warden: Warden, endpoint: GoogleTokenEndpoint, key: dict[str, str]
) -> None:
    warden.add(ADDR, "google_service_account", {"key_json": json.dumps(key)})
    before = endpoint.count()
    token = warden.access_token(ADDR, scopes=[BQ]).reveal()
    assert tokeninfo(endpoint, token)["scope"] == BQ
    assert warden.access_token(ADDR, scopes=[BQ]).reveal() == token  # cached
    assert endpoint.count() == before + 1
    other = warden.access_token(ADDR, scopes=[GCS, BQ]).reveal()
    assert other != token and endpoint.count() == before + 2
    delegated = warden.access_token(ADDR, scopes=[BQ], subject="alice@corp.test").reveal()
    assert tokeninfo(endpoint, delegated).get("sub") == "alice@corp.test"
    used = [e.detail for e in warden.audit_events(address=ADDR) if e.action == "use"]
    assert {"scopes": [BQ], "subject": "alice@corp.test"} in used  # for the least-privilege review
    with pytest.raises(ValidationError, match="scopes"):
        warden.access_token(ADDR)


def test_one_mint_for_many_threads(
    warden: Warden, endpoint: GoogleTokenEndpoint, key: dict[str, str]
) -> None:
    warden.add(ADDR, "google_service_account", {"key_json": json.dumps(key)})
    before = endpoint.count()
    tokens: list[str] = []

    def call() -> None:
        tokens.append(warden.access_token(ADDR, scopes=[GCS]).reveal())

    threads = [threading.Thread(target=call) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(tokens)) == 1 and endpoint.count() == before + 1


def test_a_key_google_does_not_know_is_a_clear_error(
    warden: Warden, endpoint: GoogleTokenEndpoint
) -> None:
    stranger, _ = make_service_account_key(
        endpoint.token_uri, client_email="gone@acme-prod.iam.gserviceaccount.com"
    )
    warden.add(ADDR, "google_service_account", {"key_json": json.dumps(stranger)})
    with pytest.raises(CredentialInvalid, match="invalid_grant") as info:
        warden.access_token(ADDR, scopes=[BQ])
    assert info.value.exit_code == 7 and "new key" in (info.value.hint or "")
    assert "PRIVATE KEY" not in str(info.value) + (info.value.hint or "")
    assert warden.describe(ADDR).health == "invalid"
    events = [e for e in warden.audit_events(address=ADDR) if e.action == "mint"]
    assert events[-1].result == "error" and events[-1].detail["health"] == "invalid"


def _mangled(key: dict[str, str], **changes: Any) -> str:
    return json.dumps({**key, **changes})


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda k: _mangled(k, private_key=k["private_key"][:200]), "private_key"),
        (lambda k: _mangled(k, private_key=k["private_key"].replace("M", "#", 3)), "private_key"),
        (lambda k: _mangled(k, type="authorized_user"), "type"),
        (lambda k: _mangled(k, client_email="someone@gmail.com"), "client_email"),
        (lambda k: _mangled(k, private_key_id="xyz"), "private_key_id"),
        (lambda k: _mangled(k, token_uri="ftp://example.com/token"), "token_uri"),
        (
            lambda k: json.dumps({"installed": {"client_id": "x", "client_secret": "y"}}),
            "OAuth client file",
        ),
        (lambda k: json.dumps(k)[:-10], "not valid JSON"),
        (lambda k: _mangled({kk: v for kk, v in k.items() if kk != "project_id"}), "project_id"),
    ],
)
def test_bad_key_files_are_refused_naming_the_field(
    warden: Warden, key: dict[str, str], make: Any, field: str
) -> None:
    with pytest.raises(ValidationError, match=field) as info:
        warden.add(ADDR, "google_service_account", {"key_json": make(key)})
    assert "PRIVATE KEY" not in info.value.message
    assert warden.list(kind="google_service_account") == []


def test_an_ec_key_is_refused(warden: Warden, key: dict[str, str]) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    with pytest.raises(ValidationError, match="not an RSA key"):
        warden.add(ADDR, "google_service_account", {"key_json": _mangled(key, private_key=pem)})


def test_key_material_never_reaches_the_store_or_the_log(
    warden: Warden, endpoint: GoogleTokenEndpoint, key: dict[str, str], tmp_path: Path
) -> None:
    warden.add(ADDR, "google_service_account", {"key_json": json.dumps(key)})
    token = warden.access_token(ADDR, scopes=[BQ]).reveal()
    raw = stored_bytes(warden.settings.database_url)
    body = "".join(key["private_key"].splitlines()[1:-1])
    for canary in (body[20:60], key["private_key"][:60], token):
        assert canary.encode() not in raw
    assert body[20:60] not in json.dumps([e.to_dict() for e in warden.audit_events()])


def test_cli_add_from_file_then_token(
    tmp_path: Path, endpoint: GoogleTokenEndpoint, key: dict[str, str]
) -> None:
    import os
    import subprocess
    import sys

    cli = str(Path(sys.executable).parent / "credwarden")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREDWARDEN_")}
    env["CREDWARDEN_HOME"] = str(tmp_path / "home")
    download = tmp_path / "etl-key.json"
    download.write_text(json.dumps(key))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([cli, *args], env=env, capture_output=True, text=True, timeout=60)

    assert run("init").returncode == 0
    added = run("add", ADDR, "--kind", "google_service_account", "--from-file", str(download))
    assert added.returncode == 0, added.stderr
    assert f"rm {download}" in added.stderr
    token = run("token", ADDR, "--scope", "https://www.googleapis.com/auth/cloud-platform")
    assert token.returncode == 0, token.stderr
    assert "warning" in token.stderr and "cloud-platform" in token.stderr
    assert tokeninfo(endpoint, token.stdout.strip())["scope"].endswith("cloud-platform")
    assert run("token", ADDR).returncode == 2  # no scope: a usage error
    shown = run("show", ADDR)
    assert key["client_email"] in shown.stdout and "PRIVATE KEY" not in shown.stdout


def test_live_test_mints_a_token(
    warden: Warden, endpoint: GoogleTokenEndpoint, key: dict[str, str]
) -> None:
    warden.add(ADDR, "google_service_account", {"key_json": json.dumps(key)})
    outcome = warden.test(ADDR)
    assert outcome.result == "no_test" and "token was obtained" in outcome.message
    events = [e for e in warden.audit_events(address=ADDR) if e.action == "test"]
    assert events[-1].detail["result"] == "no_test"  # the check is on record
    assert warden.describe(ADDR).health == "ok"
