"""The route table (`routes.py`) against the facade, the app and the remote client: every
facade operation is served by a route or declared local-only with a reason, the app serves
exactly the table's routes, and the remote client calls every route by the table's name."""

from __future__ import annotations

import inspect
from pathlib import Path

from credwarden import Warden
from credwarden.api.app import create_app
from credwarden.facade import Facade
from credwarden.remote import RemoteWarden
from credwarden.remote import client as remote_client
from credwarden.routes import BY_NAME, LOCAL_ONLY, ROUTES

from .conftest import Api
from .test_matrix import declared_routes

LIFECYCLE = {"close", "principal", "source", "store_id", "environments", "settings"}
"""Members that are not operations: the connection's lifecycle and what it is connected to."""


def _operations(cls: type) -> set[str]:
    return {
        name
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_") and callable(member) and name not in LIFECYCLE
    }


def test_every_facade_operation_has_a_route_or_a_local_only_reason() -> None:
    routed = {r.operation for r in ROUTES}
    assert set(LOCAL_ONLY).isdisjoint(routed), "an operation both routed and local-only"
    assert all(len(reason) > 20 for reason in LOCAL_ONLY.values())
    facade_ops = {
        n for n in vars(Facade) if not n.startswith("_") and n not in LIFECYCLE and n != "settings"
    }
    assert facade_ops - routed - set(LOCAL_ONLY) == set()
    # The local facade's other public operations (the server's: authenticate, the jobs, ...)
    local = _operations(Warden) - {"open", "open_local", "init"}
    assert local - routed - set(LOCAL_ONLY) == set(), "add a route, or say why it is local"
    assert routed - local == set(), "a route for an operation the facade does not have"


def test_the_app_serves_exactly_the_table(api: Api) -> None:
    app = create_app(api.warden)
    served = {(m, p) for m, p in declared_routes(app) if p.startswith("/v1/")}
    table = {(r.method, r.path) for r in ROUTES}
    assert len(table) == len(ROUTES)
    assert served - table == set(), "routes the table does not have"
    assert table - served == set(), "rows for routes the app does not serve"


def test_the_remote_client_calls_every_route_by_name() -> None:
    source = Path(inspect.getfile(remote_client)).read_text()
    called = {name for name in BY_NAME if f'"{name}"' in source}
    assert set(BY_NAME) - called == set(), "routes the remote client never calls"
    ops = _operations(RemoteWarden) - {"open", "from_env", "init", "health", "url"}
    facade_ops = {n for n in vars(Facade) if not n.startswith("_") and n not in LIFECYCLE}
    assert ops == facade_ops, "the client's operations are exactly the facade's"
