"""The API against its own OpenAPI document: schemathesis generates requests for every
operation (authenticated as `admin`) and checks that none is a server error and that each
answer's status, content type and body are the ones documented.

SQLite only (the store is not what is tested here, and it keeps the file fast). Each
operation is one test over a freshly seeded store; its examples share that store, so later
ones meet the state earlier ones left.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from credwarden.api.app import create_app
from credwarden.api.server import build
from tests.api.conftest import PUBLIC_URL, Api

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


class _AppUnderTest:
    """The ASGI app the generated calls go to: the real server front over the current test's
    store (set by the autouse fixture below), so every operation gets a freshly seeded one."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.app is not None, "no store: the `_serve` fixture sets one"
        await self.app(scope, receive, send)


def _document() -> dict[str, Any]:
    """The OpenAPI document, at collection time (it depends on the routes only, not on a store;
    `test_served_document_is_the_tested_one` checks a real server serves the same)."""
    from types import SimpleNamespace

    return dict(create_app(SimpleNamespace()).openapi())  # type: ignore[arg-type]


APP = _AppUnderTest()


@pytest.fixture
def database_url(tmp_path: Any) -> str:
    """SQLite only (overrides the both-backends fixture for this module)."""
    return f"sqlite:///{tmp_path / 'cw.db'}"


@pytest.fixture(autouse=True)
def _serve(api: Api) -> Iterator[None]:
    APP.app = build(api.warden, public_url=PUBLIC_URL)
    try:
        yield
    finally:
        APP.app = None


# Eager loading (one test per operation). `schemathesis.pytest.from_fixture` would load the
# schema from a fixture instead, but its runner sets `Node._nodeid`, which pytest 9 no longer
# has.
_loaded = schemathesis.openapi.from_dict(_document())
_loaded.app = APP

schema = (
    _loaded
    # Revoking a token could revoke the run's own (admin's): every later example would be
    # a 401, conformant but testing nothing. Revocation is covered in test_matrix.py.
    .exclude(method="DELETE", path="/v1/tokens/{token_id}")
    # Removing a principal could remove `admin` itself, with the same effect (its token goes
    # with it). Covered in test_matrix.py.
    .exclude(method="DELETE", path="/v1/principals/{name}")
    # Revoking grants could take `admin`'s away (then every call is a 403). Covered in
    # test_matrix.py.
    .exclude(method="POST", path="/v1/grants/revoke")
)


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    # One store per operation: function-scoped fixtures are shared by its examples on
    # purpose; a slow generation (large bodies) is not a failure of the API. Key rotation
    # (re-wraps every data key) stays in: over the few seeded versions it takes milliseconds.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
def test_api_conforms_to_its_schema(case: Any, api: Api) -> None:
    case.call_and_validate(headers=api.auth("admin"), checks=CHECKS)


def test_served_document_is_the_tested_one(api: Api) -> None:
    from starlette.testclient import TestClient

    with TestClient(build(api.warden, public_url=PUBLIC_URL)) as client:
        assert client.get("/openapi.json").json() == _document()
