"""Entra service principals: msal against oidc-provider over HTTPS with a test CA and an
Entra-style tenant path (`/<tenant>/v2.0`), per PEERS.md section 4."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from credwarden import CredentialInvalid, ValidationError, Warden
from tests.peers.oidc import OidcProvider, confidential_client, require_node

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
APP = "11111111-2222-3333-4444-555555555555"
CERT_APP = "66666666-7777-8888-9999-000000000000"
SECRET = "CANARY-entra-secret-3f9a"
ADDR = "prod/azure/reporting"
SCOPE = "https://graph.microsoft.com/.default"


def make_cert(days: int = 365) -> tuple[rsa.RSAPrivateKey, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "reporting")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=2))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    pem = (
        cert.public_bytes(serialization.Encoding.PEM).decode()
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
    )
    return key, pem


@pytest.fixture(scope="module")
def cert() -> tuple[rsa.RSAPrivateKey, str]:
    return make_cert()


@pytest.fixture(scope="module")
def entra(cert: tuple[rsa.RSAPrivateKey, str]) -> Iterator[OidcProvider]:
    require_node()
    from jwt.algorithms import RSAAlgorithm

    jwk = json.loads(RSAAlgorithm.to_jwk(cert[0].public_key()))
    clients = [
        confidential_client(
            APP, SECRET, grant_types=("client_credentials",), auth_method="client_secret_post"
        ),
        {
            "client_id": CERT_APP,
            "grant_types": ["client_credentials"],
            "response_types": [],
            "redirect_uris": [],
            "token_endpoint_auth_method": "private_key_jwt",
            "token_endpoint_auth_signing_alg": "RS256",
            "jwks": {"keys": [jwk]},
        },
    ]
    with OidcProvider(clients, tls=True, issuer_path=f"/{TENANT}/v2.0", access_ttl=600) as p:
        yield p


@pytest.fixture
def trust(entra: OidcProvider, monkeypatch: pytest.MonkeyPatch) -> str:
    """msal talks through requests, which honours REQUESTS_CA_BUNDLE: point it at the test CA."""
    assert entra.ca_path is not None
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(entra.ca_path))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(entra.ca_path))
    return f"https://127.0.0.1:{entra.port}"


def _add(w: Warden, host: str, **fields: Any) -> None:
    w.add(
        ADDR,
        "azure_service_principal",
        {"tenant_id": TENANT, "client_id": APP, "authority_host": host, **fields},
    )


def test_secret_mints_and_caches(warden: Warden, entra: OidcProvider, trust: str) -> None:
    _add(warden, trust, client_secret=SECRET)
    before = entra.count("client_credentials")
    token = warden.access_token(ADDR, scopes=[SCOPE]).reveal()
    assert token and warden.access_token(ADDR, scopes=[SCOPE]).reveal() == token
    assert entra.count("client_credentials") == before + 1
    assert SECRET not in json.dumps([e.to_dict() for e in warden.audit_events()])
    from tests.rawdb import stored_bytes

    raw = stored_bytes(warden.settings.database_url)
    assert SECRET.encode() not in raw and token.encode() not in raw


def test_wrong_secret_is_explained(warden: Warden, entra: OidcProvider, trust: str) -> None:
    _add(warden, trust, client_secret="not-the-secret")
    with pytest.raises(CredentialInvalid, match="invalid_client") as info:
        warden.access_token(ADDR, scopes=[SCOPE])
    assert "not-the-secret" not in str(info.value) + (info.value.hint or "")
    assert warden.describe(ADDR).health == "invalid"


def test_certificate_mints_with_private_key_jwt(
    warden: Warden, entra: OidcProvider, trust: str, cert: tuple[rsa.RSAPrivateKey, str]
) -> None:
    warden.add(
        ADDR,
        "azure_service_principal",
        {
            "tenant_id": TENANT,
            "client_id": CERT_APP,
            "authority_host": trust,
            "certificate": cert[1],
        },
    )
    info = warden.describe(ADDR)
    assert info.fields["thumbprint"] and info.expires_at  # the certificate's notAfter
    assert info.fields["certificate"] is None  # secret: masked
    assert warden.access_token(ADDR, scopes=[SCOPE]).reveal()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"tenant_id": "not a tenant", "client_secret": "x"}, "tenant_id"),
        ({"client_id": "app-name", "client_secret": "x"}, "client_id"),
        ({}, "either a client_secret or a certificate"),
        ({"client_secret": "x", "certificate": "y"}, "either a client_secret or a certificate"),
        (
            {"certificate": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"},
            "not a readable PEM certificate",
        ),
    ],
)
def test_bad_input_is_refused(warden: Warden, fields: dict[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        warden.add(
            ADDR, "azure_service_principal", {"tenant_id": TENANT, "client_id": APP, **fields}
        )
    assert warden.list(kind="azure_service_principal") == []


def test_certificate_without_key_or_expired_is_refused(
    warden: Warden, cert: tuple[rsa.RSAPrivateKey, str]
) -> None:
    only_cert = cert[1].split("-----BEGIN PRIVATE KEY-----")[0]
    with pytest.raises(ValidationError, match="no private key"):
        warden.add(
            ADDR,
            "azure_service_principal",
            {"tenant_id": TENANT, "client_id": APP, "certificate": only_cert},
        )
    _, expired = make_cert(days=-1)
    with pytest.raises(ValidationError, match="expired"):
        warden.add(
            ADDR,
            "azure_service_principal",
            {"tenant_id": TENANT, "client_id": APP, "certificate": expired},
        )
    assert warden.list(kind="azure_service_principal") == []


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ({"error": "invalid_client", "error_codes": [7000215]}, "client secret is wrong"),
        ({"error": "invalid_client", "error_codes": [7000222]}, "has expired"),
        (
            {
                "error": "unauthorized_client",
                "error_description": "AADSTS700016: Application with"
                " identifier '...' was not found",
            },
            "no such application",
        ),
        ({"error": "invalid_request", "error_codes": [123456]}, "AADSTS123456"),
    ],
)
def test_entra_errors_are_explained(result: dict[str, Any], expected: str) -> None:
    """Entra's error answers (its documented shape; Entra itself cannot run here)."""
    from credwarden.oauth.azure import _explain

    error = _explain(result)
    assert expected in error.message and error.hint and error.exit_code == 7


def test_expiry_surfaces_in_health_and_report(
    warden: Warden, tmp_path: Any, cert: tuple[rsa.RSAPrivateKey, str]
) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    _, soon = make_cert(days=5)
    warden.add(
        "prod/azure/cert-soon",
        "azure_service_principal",
        {"tenant_id": TENANT, "client_id": CERT_APP, "certificate": soon},
    )
    warden.add(
        "prod/azure/secret-later",
        "azure_service_principal",
        {"tenant_id": TENANT, "client_id": APP, "client_secret": SECRET},
        expires_at="2099-01-01",
    )
    assert warden.describe("prod/azure/cert-soon").health == "expiring"
    cli = str(Path(sys.executable).parent / "credwarden")
    env = {
        **os.environ,
        "CREDWARDEN_DATABASE_URL": warden.settings.database_url,
        "CREDWARDEN_HOME": warden.settings.home,
    }
    out = subprocess.run(
        [cli, "report", "expiring", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert [r["address"] for r in json.loads(out)] == ["prod/azure/cert-soon"]
    assert SECRET not in out
