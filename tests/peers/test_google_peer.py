"""The Google token-endpoint peer, proved with google-auth itself (no credwarden code)."""

from __future__ import annotations

import datetime
import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import google.auth.transport.requests as google_requests
import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import _exponential_backoff
from google.auth.exceptions import RefreshError
from google.oauth2 import service_account

from tests.peers.google import (
    GOOGLE_TOKEN_AUDIENCE,
    JWT_BEARER_GRANT,
    GoogleTokenEndpoint,
    make_service_account_key,
)

BIGQUERY = "https://www.googleapis.com/auth/bigquery"
STORAGE_RO = "https://www.googleapis.com/auth/devstorage.read_only"


@pytest.fixture(scope="module")
def rsa_keys() -> tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]:
    """Two 2048-bit keys, generated once for the module."""
    return (
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )


@pytest.fixture(autouse=True)
def _no_google_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(
        "GOOGLE_SDK_EXPERIMENTAL_PYTHON_REGIONAL_ACCESS_BOUNDARY_LOOKUP_ENABLED", raising=False
    )


@pytest.fixture
def google() -> Iterator[GoogleTokenEndpoint]:
    with GoogleTokenEndpoint() as endpoint:
        yield endpoint


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


@pytest.fixture
def request_(session: requests.Session) -> google_requests.Request:
    return google_requests.Request(session)


@pytest.fixture
def info(
    google: GoogleTokenEndpoint, rsa_keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]
) -> dict[str, str]:
    key_info, _ = make_service_account_key(google.token_uri, private_key=rsa_keys[0])
    google.add_service_account(key_info)
    return key_info


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """google-auth's retry back-off, recorded instead of slept."""
    recorded: list[float] = []
    monkeypatch.setattr(_exponential_backoff, "time", SimpleNamespace(sleep=recorded.append))
    return recorded


def _creds(info: dict[str, str], *scopes: str) -> service_account.Credentials:
    return service_account.Credentials.from_service_account_info(info, scopes=list(scopes) or None)


def _error(exc: pytest.ExceptionInfo[RefreshError]) -> dict[str, Any]:
    body = exc.value.args[1]
    assert isinstance(body, dict)
    return body


# -- the key file ----------------------------------------------------------------------


def test_service_account_key_looks_like_a_real_one(tmp_path: Path) -> None:
    info, key = make_service_account_key("http://127.0.0.1:1/token")
    assert list(info) == [
        "type",
        "project_id",
        "private_key_id",
        "private_key",
        "client_email",
        "client_id",
        "auth_uri",
        "token_uri",
        "auth_provider_x509_cert_url",
        "client_x509_cert_url",
        "universe_domain",
    ]
    assert info["type"] == "service_account"
    assert info["project_id"] == "acme-prod"
    assert re.fullmatch(r"[0-9a-f]{40}", info["private_key_id"])
    assert re.fullmatch(r"[1-9][0-9]{20}", info["client_id"])
    assert info["client_email"] == "etl@acme-prod.iam.gserviceaccount.com"
    assert info["token_uri"] == "http://127.0.0.1:1/token"
    assert info["client_x509_cert_url"].endswith("/etl%40acme-prod.iam.gserviceaccount.com")
    assert info["universe_domain"] == "googleapis.com"
    pem = info["private_key"]
    assert pem.startswith("-----BEGIN PRIVATE KEY-----\n")
    assert pem.endswith("-----END PRIVATE KEY-----\n")
    assert "\\n" in json.dumps(info)  # newlines escaped in the JSON text, as in real files
    loaded = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(loaded, rsa.RSAPrivateKey)
    assert loaded.private_numbers() == key.private_numbers()
    assert key.key_size == 2048

    other, other_key = make_service_account_key("http://127.0.0.1:1/token")
    assert other_key.private_numbers() != key.private_numbers()  # fresh key each time
    assert other["private_key_id"] != info["private_key_id"]

    path = tmp_path / "sa.json"
    path.write_text(json.dumps(info, indent=2))
    creds = service_account.Credentials.from_service_account_file(str(path), scopes=[BIGQUERY])
    assert creds.service_account_email == info["client_email"]
    assert creds.project_id == "acme-prod"


def test_short_keys_are_refused(google: GoogleTokenEndpoint) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - refused on purpose
    with pytest.raises(ValueError, match="1024 bits"):
        google.add_key("k", small.public_key())


# -- the happy paths -------------------------------------------------------------------


def test_refresh_mints_a_scoped_token(
    google: GoogleTokenEndpoint,
    info: dict[str, str],
    request_: google_requests.Request,
    session: requests.Session,
) -> None:
    creds = _creds(info, BIGQUERY)
    creds.refresh(request_)

    assert creds.valid
    assert creds.token.startswith("ya29.")
    assert creds.expiry is not None
    assert google.count() == 1
    record = google.requests[0]
    assert record["status"] == 200
    assert record["access_token"] == creds.token
    assert record["grant_type"] == JWT_BEARER_GRANT
    assert record["header"] == {"alg": "RS256", "typ": "JWT", "kid": info["private_key_id"]}
    # Exactly these claims; aud is Google's, not our token_uri.
    claims = record["claims"]
    assert set(claims) == {"iat", "exp", "iss", "aud", "scope"}
    assert claims["aud"] == GOOGLE_TOKEN_AUDIENCE != info["token_uri"]
    assert claims["iss"] == info["client_email"]
    assert claims["exp"] - claims["iat"] == 3600
    assert record["http_headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert "cred-type/sa" in record["http_headers"]["x-goog-api-client"]

    assert google.tokens[creds.token]["scope"] == BIGQUERY
    assert "sub" not in google.tokens[creds.token]
    info_resp = session.get(google.tokeninfo_uri, params={"access_token": creds.token})
    assert info_resp.status_code == 200
    tokeninfo = info_resp.json()
    assert tokeninfo["scope"] == BIGQUERY
    assert tokeninfo["email"] == info["client_email"]
    assert tokeninfo["aud"] == info["client_id"]
    assert 3590 <= tokeninfo["expires_in"] <= 3600
    assert "sub" not in tokeninfo
    # Bearer header works as well as the query parameter.
    by_header = session.get(
        google.tokeninfo_uri, headers={"Authorization": f"Bearer {creds.token}"}
    )
    assert by_header.json()["scope"] == BIGQUERY


def test_several_scopes_are_space_separated(
    google: GoogleTokenEndpoint, info: dict[str, str], request_: google_requests.Request
) -> None:
    creds = _creds(info, BIGQUERY, STORAGE_RO)
    creds.refresh(request_)
    assert google.tokens[creds.token]["scope"] == f"{BIGQUERY} {STORAGE_RO}"


def test_expires_in_is_configurable(
    info: dict[str, str],
    google: GoogleTokenEndpoint,
    request_: google_requests.Request,
    session: requests.Session,
) -> None:
    google.expires_in = 120
    creds = _creds(info, BIGQUERY)
    creds.refresh(request_)
    # google-auth stores a naive UTC expiry; compare as seconds from now.
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    remaining = (creds.expiry - now).total_seconds()
    assert 100 < remaining <= 120

    google.expires_in = 0  # already expired on arrival
    creds = _creds(info, BIGQUERY)
    creds.refresh(request_)
    assert not creds.valid
    resp = session.get(google.tokeninfo_uri, params={"access_token": creds.token})
    assert resp.status_code == 400
    assert resp.json()["error_description"] == "Invalid Value"


def test_with_subject_adds_sub(
    google: GoogleTokenEndpoint,
    info: dict[str, str],
    request_: google_requests.Request,
    session: requests.Session,
) -> None:
    creds = _creds(info, BIGQUERY).with_subject("user@corp.test")
    creds.refresh(request_)

    record = google.requests[-1]
    assert record["sub"] == "user@corp.test"
    assert record["claims"]["sub"] == "user@corp.test"
    assert google.tokens[creds.token]["sub"] == "user@corp.test"
    tokeninfo = session.get(google.tokeninfo_uri, params={"access_token": creds.token}).json()
    assert tokeninfo["sub"] == "user@corp.test"
    assert tokeninfo["scope"] == BIGQUERY


def test_a_file_without_kid_is_checked_against_every_key_of_the_account(
    google: GoogleTokenEndpoint, info: dict[str, str], request_: google_requests.Request
) -> None:
    no_kid = {k: v for k, v in info.items() if k != "private_key_id"}
    creds = _creds(no_kid, BIGQUERY)
    creds.refresh(request_)
    assert "kid" not in google.requests[-1]["header"]
    assert creds.token in google.tokens


# -- refusals --------------------------------------------------------------------------


def test_a_key_that_does_not_match_the_registered_one_is_an_invalid_signature(
    google: GoogleTokenEndpoint,
    info: dict[str, str],
    rsa_keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey],
    request_: google_requests.Request,
) -> None:
    forged, _ = make_service_account_key(google.token_uri, private_key=rsa_keys[1])
    forged = dict(info, private_key=forged["private_key"])  # same kid/email, other key
    with pytest.raises(RefreshError, match="invalid_grant") as exc:
        _creds(forged, BIGQUERY).refresh(request_)
    assert _error(exc) == {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
    assert exc.value.retryable is False
    assert google.count() == 1  # not retried
    assert google.requests[0]["status"] == 400
    assert google.tokens == {}


def test_unknown_kid_and_removed_key_are_invalid_signatures(
    google: GoogleTokenEndpoint, info: dict[str, str], request_: google_requests.Request
) -> None:
    with pytest.raises(RefreshError, match="Invalid JWT Signature"):
        _creds(dict(info, private_key_id="0" * 40), BIGQUERY).refresh(request_)
    google.remove_key(info["private_key_id"])
    with pytest.raises(RefreshError, match="Invalid JWT Signature"):
        _creds(info, BIGQUERY).refresh(request_)
    assert [r["status"] for r in google.requests] == [400, 400]


def test_a_key_of_another_account_is_an_invalid_signature(
    google: GoogleTokenEndpoint,
    info: dict[str, str],
    rsa_keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey],
    request_: google_requests.Request,
) -> None:
    other, _ = make_service_account_key(
        google.token_uri,
        client_email="web@acme-prod.iam.gserviceaccount.com",
        private_key=rsa_keys[1],
    )
    google.add_service_account(other)
    # The file claims to be "web@" but carries etl@'s key id and key.
    mixed = dict(info, client_email=other["client_email"])
    with pytest.raises(RefreshError, match="Invalid JWT Signature"):
        _creds(mixed, BIGQUERY).refresh(request_)
    _creds(other, BIGQUERY).refresh(request_)  # web@ itself is fine
    assert google.count(200) == 1


def test_unknown_account(
    google: GoogleTokenEndpoint, info: dict[str, str], request_: google_requests.Request
) -> None:
    stranger = dict(info, client_email="ghost@acme-prod.iam.gserviceaccount.com")
    with pytest.raises(RefreshError) as exc:
        _creds(stranger, BIGQUERY).refresh(request_)
    assert _error(exc) == {
        "error": "invalid_grant",
        "error_description": "Invalid grant: account not found",
    }
    google.remove_account(info["client_email"])
    with pytest.raises(RefreshError, match="account not found"):
        _creds(info, BIGQUERY).refresh(request_)


def test_without_scopes_google_auth_still_calls_the_endpoint_with_an_empty_scope(
    google: GoogleTokenEndpoint, info: dict[str, str], request_: google_requests.Request
) -> None:
    with pytest.raises(RefreshError) as exc:
        _creds(info).refresh(request_)
    assert _error(exc)["error"] == "invalid_scope"
    assert google.requests[0]["scope"] == ""


def test_self_signed_jwts_never_reach_the_endpoint(
    google: GoogleTokenEndpoint, info: dict[str, str], request_: google_requests.Request
) -> None:
    creds = _creds(info, BIGQUERY).with_always_use_jwt_access(True)
    creds.refresh(request_)
    other_universe = _creds(dict(info, universe_domain="example.test"), BIGQUERY)
    other_universe.refresh(request_)
    assert google.count() == 0
    claims = jwt.decode(creds.token, options={"verify_signature": False})
    assert claims["scope"] == BIGQUERY
    assert claims["iss"] == claims["sub"] == info["client_email"]
    # Delegation never self-signs: the endpoint is called after all.
    creds.with_subject("user@corp.test").refresh(request_)
    assert google.count(200) == 1


def _post_assertion(
    session: requests.Session, google: GoogleTokenEndpoint, assertion: str, **form: str
) -> requests.Response:
    data = {"grant_type": JWT_BEARER_GRANT, "assertion": assertion} | form
    return session.post(google.token_uri, data=data)


def test_hand_made_assertions_are_checked(
    google: GoogleTokenEndpoint,
    info: dict[str, str],
    rsa_keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey],
    session: requests.Session,
) -> None:
    now = int(time.time())
    good = {
        "iss": info["client_email"],
        "aud": GOOGLE_TOKEN_AUDIENCE,
        "scope": BIGQUERY,
        "iat": now,
        "exp": now + 3600,
    }
    kid = {"kid": info["private_key_id"]}

    def sign(claims: dict[str, Any]) -> str:
        return jwt.encode(claims, rsa_keys[0], algorithm="RS256", headers=kid)

    ok = _post_assertion(session, google, sign(good))
    assert ok.status_code == 200
    assert ok.json()["token_type"] == "Bearer"
    assert ok.json()["expires_in"] == 3600

    wrong_aud = _post_assertion(session, google, sign(good | {"aud": google.token_uri}))
    assert wrong_aud.status_code == 400
    assert wrong_aud.json()["error_description"] == "Invalid JWT Signature."

    too_long = _post_assertion(session, google, sign(good | {"exp": now + 7200}))
    assert too_long.json()["error"] == "invalid_grant"
    assert too_long.json()["error_description"].startswith("Invalid JWT: Token must be")

    expired = _post_assertion(session, google, sign(good | {"iat": now - 7200, "exp": now - 3600}))
    assert expired.json()["error_description"].startswith("Invalid JWT: Token must be")

    no_scope = _post_assertion(
        session, google, sign({k: v for k, v in good.items() if k != "scope"})
    )
    assert no_scope.json()["error"] == "invalid_scope"

    hs256 = jwt.encode(good, "x" * 32, algorithm="HS256", headers=kid)
    assert _post_assertion(session, google, hs256).json()["error"] == "invalid_grant"

    grant = _post_assertion(session, google, sign(good), grant_type="client_credentials")
    assert grant.json()["error"] == "unsupported_grant_type"

    assert [r["status"] for r in google.requests] == [200, 400, 400, 400, 400, 400, 400]
    assert (
        session.get(google.tokeninfo_uri, params={"access_token": "ya29.nope"}).status_code == 400
    )


# -- failures and retries --------------------------------------------------------------


def test_one_503_is_retried_after_about_a_second(
    google: GoogleTokenEndpoint, info: dict[str, str], request_: google_requests.Request
) -> None:
    google.fail_next(1, status=503)
    started = time.monotonic()
    creds = _creds(info, BIGQUERY)
    creds.refresh(request_)
    elapsed = time.monotonic() - started
    assert creds.valid
    assert [r["status"] for r in google.requests] == [503, 200]
    assert 0.8 < elapsed < 3  # the real back-off: ~1 s +-10 %


def test_retries_stop_after_three_attempts(
    google: GoogleTokenEndpoint,
    info: dict[str, str],
    request_: google_requests.Request,
    sleeps: list[float],
) -> None:
    google.fail_next(3, status=503)
    with pytest.raises(RefreshError) as exc:
        _creds(info, BIGQUERY).refresh(request_)
    assert exc.value.retryable is True
    assert google.count() == 3
    assert len(sleeps) == 2
    assert 0.9 <= sleeps[0] <= 1.1
    assert 1.8 <= sleeps[1] <= 2.2
    # The failures are used up: the next refresh works at once.
    _creds(info, BIGQUERY).refresh(request_)
    assert [r["status"] for r in google.requests] == [503, 503, 503, 200]


def test_429_is_retried_but_400_is_not(
    google: GoogleTokenEndpoint,
    info: dict[str, str],
    request_: google_requests.Request,
    sleeps: list[float],
) -> None:
    google.fail_next(2, status=429)
    _creds(info, BIGQUERY).refresh(request_)
    assert [r["status"] for r in google.requests] == [429, 429, 200]

    google.fail_next(1, status=400, body={"error": "invalid_request", "error_description": "x"})
    with pytest.raises(RefreshError, match="invalid_request") as exc:
        _creds(info, BIGQUERY).refresh(request_)
    assert exc.value.retryable is False
    assert google.count() == 4
    assert len(sleeps) == 2


# -- lifecycle -------------------------------------------------------------------------


def test_the_server_stops_cleanly() -> None:
    with GoogleTokenEndpoint() as endpoint:
        port = endpoint.port
        thread = endpoint._thread
        assert thread is not None
        assert thread.is_alive()
        assert endpoint.token_uri == f"http://127.0.0.1:{port}/token"
    assert not thread.is_alive()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
