"""Access edge cases: what grants held back is audited, and token checks never outlive a change."""

from __future__ import annotations

import contextlib
import time

from credwarden import Warden
from credwarden.access.policy import Principal
from credwarden.api.auth import FailureBrake, authenticate
from credwarden.errors import RateLimited, Unauthenticated


def test_env_vars_records_what_grants_held_back(warden: Warden) -> None:
    warden.add("prod/a/one", "secret", {"value": "1", "env_var": "ONE"})
    warden.add("prod/b/two", "secret", {"value": "2", "env_var": "TWO"})
    warden.add_principal("wf", type="workflow")
    warden.grant("wf", "prod/a/*", actions="read")
    before = len(warden.audit_events())
    with warden.acting_as(Principal("wf", "workflow")):
        got = warden.env_vars(env="prod")
        assert {k: v.reveal() for k, v in got.items()} == {"ONE": "1"}
    events = [e for e in warden.audit_events()[before:] if e.action != "audit.read"]
    assert [(e.action, e.address, e.result) for e in events] == [
        ("read", "prod/a/one", "ok"),
        ("env_vars", None, "partial"),
    ]
    assert events[1].detail["withheld"] == ["prod/b/two"]
    # A principal who may read nothing still leaves a trace.
    warden.add_principal("nobody", type="workflow")
    with warden.acting_as(Principal("nobody", "workflow")):
        assert warden.env_vars(env="prod") == {}
    last = [e for e in warden.audit_events() if e.action != "audit.read"][-1]
    assert (last.principal, last.action, last.result) == ("nobody", "env_vars", "partial")


def test_a_revoked_token_is_refused_once_the_change_is_seen(warden: Warden) -> None:
    warden.add_principal("wf", type="workflow")
    _, tok = warden.issue_token("wf")
    assert warden.authenticate(tok.reveal()).name == "wf"  # now remembered
    # Revoked by another process (its own facade): seen here after the access TTL.
    with Warden.open(database_url=warden.settings.database_url) as other:
        other.revoke_token(tok.reveal()[4:16])
    time.sleep(warden.access.ttl + 0.1)
    try:
        warden.authenticate(tok.reveal())
    except Unauthenticated as exc:
        assert "revoked" in exc.message
    else:
        raise AssertionError("a revoked token was accepted")


def test_the_brake_never_refuses_a_valid_token(warden: Warden) -> None:
    warden.add_principal("wf", type="workflow")
    _, tok = warden.issue_token("wf")
    brake = FailureBrake(max_failures=3, window=60)
    for _ in range(3):
        with contextlib.suppress(Unauthenticated):
            authenticate(warden, brake, "Bearer cwt_000000000000_" + "x" * 43, "10.0.0.1", None)
    try:
        authenticate(warden, brake, "Bearer nope", "10.0.0.1", None)
    except RateLimited:
        pass
    else:
        raise AssertionError("a braked source's bad token was not refused with 429")
    caller = authenticate(warden, brake, f"Bearer {tok.reveal()}", "10.0.0.1", None)
    assert caller.principal.name == "wf"  # same source, valid token: in
    lockouts = [e for e in warden.audit_events() if e.result == "rate_limited"]
    assert len(lockouts) == 1
