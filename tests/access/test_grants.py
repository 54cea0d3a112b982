"""Grants decide who may touch which credential: every rule is pinned by a table, then fuzzed."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credwarden.access import grants as grants_module
from credwarden.access.grants import (
    ACTIONS,
    ROLES,
    Grant,
    GrantIndex,
    normalize_pattern,
    parse_actions,
    required_action,
    role_actions,
)
from credwarden.errors import InvalidAddress, ValidationError

PROTECTED = {"prod"}


def grant(pattern: str, actions: str, principal: str = "alice", gid: str | None = None) -> Grant:
    return Grant(
        id=gid or f"g-{principal}-{pattern}-{actions}",
        principal=principal,
        pattern=normalize_pattern(pattern),
        actions=parse_actions(actions),
    )


def index(*gs: Grant, protected: set[str] | None = None) -> GrantIndex:
    return GrantIndex(gs, PROTECTED if protected is None else protected)


# --- patterns ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("prod", "prod/*/*"),
        ("prod/stripe", "prod/stripe/*"),
        ("prod/stripe/billing", "prod/stripe/billing"),
        ("*", "*/*/*"),
        ("*/*", "*/*/*"),
        ("*/*/*", "*/*/*"),
        ("*/github/*", "*/github/*"),
        ("p?od", "p?od/*/*"),
        ("dev/*/api-key", "dev/*/api-key"),
        ("dev/s*e/*", "dev/s*e/*"),
        ("0/1/2", "0/1/2"),
        ("a.b/c_d/e-f", "a.b/c_d/e-f"),
        ("?", "?/*/*"),
        ("x" * 64, "x" * 64 + "/*/*"),
    ],
)
def test_normalize_pattern(pattern: str, expected: str) -> None:
    assert normalize_pattern(pattern) == expected
    assert normalize_pattern(expected) == expected


@pytest.mark.parametrize(
    "pattern",
    [
        "",
        "prod//x",
        "Prod/x",
        "PROD",
        "a/b/c/d",
        "../x",
        "./x",
        "prod/..",
        "prod/stripe/.",
        "/prod",
        "prod/",
        "prod/stripe/",
        "prod/st ripe",
        "prod/stripe/bil#x",
        "prod/stripe/[ab]",
        "cw://prod/stripe/x",
        "-x/y",
        "_x",
        ".hidden/*",
        "x" * 65,
        "prod/stripe/" + "*" * 65,
        "prod\\stripe",
    ],
)
def test_normalize_pattern_rejects(pattern: str) -> None:
    with pytest.raises(InvalidAddress):
        normalize_pattern(pattern)


@pytest.mark.parametrize("value", [None, 3, b"prod", ["prod"]])
def test_normalize_pattern_rejects_non_text(value: object) -> None:
    with pytest.raises(InvalidAddress):
        normalize_pattern(cast(Any, value))


# --- actions and roles ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("read", {"read"}),
        ("read,use", {"read", "use"}),
        (" read , use ", {"read", "use"}),
        ("read,read", {"read"}),
        ("read,", {"read"}),
        (["read", "use"], {"read", "use"}),
        (("admin",), {"admin"}),
        (frozenset({"write", "rotate"}), {"write", "rotate"}),
        (["read,use", "write"], {"read", "use", "write"}),
        (",".join(ACTIONS), set(ACTIONS)),
        (iter(["describe"]), {"describe"}),
    ],
)
def test_parse_actions(text: Any, expected: set[str]) -> None:
    assert parse_actions(text) == frozenset(expected)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("", "no actions"),
        (",", "no actions"),
        (" , ", "no actions"),
        ([], "no actions"),
        ([""], "no actions"),
        ("reed", "'reed'"),
        ("admin,bogus", "'bogus'"),
        ("READ", "'READ'"),
        ("editor", "'editor'"),
        ("viewer", "'viewer'"),
        (["read", "list"], "'list'"),
        ("*", "'*'"),
    ],
)
def test_parse_actions_errors(text: Any, named: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_actions(text)
    assert named in info.value.message
    assert info.value.hint is not None
    assert all(action in info.value.hint for action in ACTIONS)


@pytest.mark.parametrize("role", ["editor", "runner", "viewer"])
def test_parse_actions_points_roles_elsewhere(role: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_actions(role)
    assert "role" in (info.value.hint or "")


@pytest.mark.parametrize("bad", [[1], ["read", None], [b"read"]])
def test_parse_actions_rejects_non_text_items(bad: Any) -> None:
    with pytest.raises(ValidationError):
        parse_actions(bad)


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("admin", set(ACTIONS)),
        ("editor", {"describe", "use", "read", "write", "rotate"}),
        ("runner", {"describe", "use", "read"}),
        ("viewer", {"describe"}),
    ],
)
def test_role_actions(role: str, expected: set[str]) -> None:
    assert role_actions(role) == frozenset(expected)
    assert role_actions(role) == frozenset(ROLES[role])


@pytest.mark.parametrize("role", ["", "Admin", "owner", "read", "runner ", None])
def test_role_actions_unknown(role: Any) -> None:
    with pytest.raises(ValidationError) as info:
        role_actions(role)
    assert all(name in (info.value.hint or "") for name in ROLES)


@pytest.mark.parametrize(
    ("op", "action"),
    [
        ("read", "read"),
        ("use", "use"),
        ("describe", "describe"),
        ("list", "describe"),
        ("history", "describe"),
        ("write", "write"),
        ("delete", "write"),
        ("import", "write"),
        ("test", "use"),
        ("refresh", "use"),
        ("mint", "use"),
        ("rotate", "rotate"),
        ("retire", "rotate"),
        ("admin", "admin"),
        ("audit.read", "admin"),
        ("audit.verify", "admin"),
        ("key.rotate", "admin"),
        ("key.rewrap", "admin"),
        ("principal.add", "admin"),
        ("principal.remove", "admin"),
        ("grant.add", "admin"),
        ("grant.revoke", "admin"),
        ("token.create", "admin"),
        ("token.revoke", "admin"),
        ("environment.protect", "admin"),
        ("environment.add", "admin"),
        ("", "admin"),
        ("READ", "admin"),
        ("read ", "admin"),
        ("something.new", "admin"),
        ("exfiltrate", "admin"),
    ],
)
def test_required_action(op: str, action: str) -> None:
    assert required_action(op) == action


# --- Grant records ----------------------------------------------------------------------------


def test_grant_round_trips() -> None:
    g = Grant("g1", "alice", "prod/stripe/*", frozenset({"use", "read"}), "runner", "t", "bob")
    d = g.to_dict()
    assert d["actions"] == ["read", "use"]
    assert Grant.from_dict(d) == g


@pytest.mark.parametrize(
    ("d", "error"),
    [
        ({"principal": "a", "pattern": "prod", "actions": ["read"]}, ValidationError),
        ({"id": "g", "pattern": "prod", "actions": ["read"]}, ValidationError),
        ({"id": "g", "principal": "a", "actions": ["read"]}, ValidationError),
        ({"id": "g", "principal": "a", "pattern": "prod"}, ValidationError),
        ({"id": "g", "principal": "a", "pattern": "prod", "actions": []}, ValidationError),
        ({"id": "g", "principal": "a", "pattern": "prod", "actions": ["fly"]}, ValidationError),
        ({"id": 1, "principal": "a", "pattern": "prod", "actions": ["read"]}, ValidationError),
        ({"id": "g", "principal": "a", "pattern": "Prod", "actions": ["read"]}, InvalidAddress),
        (
            {"id": "g", "principal": "a", "pattern": "p", "actions": ["read"], "role": "boss"},
            ValidationError,
        ),
    ],
)
def test_grant_from_dict_rejects(d: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        Grant.from_dict(d)


def test_grant_from_dict_normalises_pattern() -> None:
    g = Grant.from_dict({"id": "g", "principal": "a", "pattern": "prod", "actions": "read,use"})
    assert g.pattern == "prod/*/*"
    assert g.actions == {"read", "use"}
    assert (g.role, g.created_at, g.created_by) == (None, "", "")


# --- evaluation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("granted", "action", "allowed"),
    [
        ("admin", "describe", True),
        ("admin", "use", True),
        ("admin", "read", True),
        ("admin", "write", True),
        ("admin", "rotate", True),
        ("admin", "admin", True),
        ("read", "use", True),
        ("read", "describe", True),
        ("read", "read", True),
        ("read", "write", False),
        ("read", "rotate", False),
        ("read", "admin", False),
        ("use", "read", False),
        ("use", "describe", True),
        ("use", "use", True),
        ("write", "describe", True),
        ("write", "read", False),
        ("write", "use", False),
        ("rotate", "describe", True),
        ("rotate", "read", False),
        ("describe", "describe", True),
        ("describe", "use", False),
        ("write,rotate", "admin", False),
        ("read,write,rotate", "admin", False),
        ("admin", "fly", False),
        ("admin", "", False),
        ("admin", "list", False),  # an operation name, not a grant action
    ],
)
def test_implications(granted: str, action: str, allowed: bool) -> None:
    idx = index(grant("dev/stripe", granted))
    assert idx.allows("alice", action, "dev/stripe/billing") is allowed
    assert idx.allows("alice", action, "dev/github/billing") is False


def test_grants_store_what_was_granted() -> None:
    g = grant("dev", "read")
    idx = index(g)
    assert idx.grants_of("alice") == [g]
    assert g.actions == {"read"}


@pytest.mark.parametrize(
    ("grants", "principal", "action", "address"),
    [
        ((), "alice", "describe", "dev/stripe/x"),
        ((), "alice", "admin", None),
        ((grant("dev", "admin", principal="bob"),), "alice", "read", "dev/stripe/x"),
        ((grant("*", "admin", principal="bob"),), "alice", "admin", None),
        ((grant("dev", "admin", principal="bob"),), "Bob", "read", "dev/stripe/x"),
        ((grant("dev", "admin"),), "alice", "read", "stage/stripe/x"),
        ((grant("dev/stripe", "admin"),), "alice", "read", "dev/github/x"),
        ((grant("dev/stripe/a", "admin"),), "alice", "read", "dev/stripe/ab"),
        ((grant("dev/stripe/a?", "admin"),), "alice", "read", "dev/stripe/a"),
        ((grant("dev", "admin"),), "alice", "read", "dev/stripe"),
        ((grant("dev", "admin"),), "alice", "read", "dev/stripe/x/y"),
        ((grant("dev", "admin"),), "alice", "read", "Dev/stripe/x"),
        ((grant("dev", "admin"),), "alice", "read", "../stripe/x"),
        ((grant("dev", "admin"),), "alice", "read", ""),
        ((grant("dev", "admin"),), "alice", "read", "dev/*/*"),
        ((grant("dev", "admin"),), "", "read", "dev/stripe/x"),
        ((grant("dev", "admin"),), "", "describe", None),
    ],
)
def test_deny_by_default(
    grants: tuple[Grant, ...], principal: str, action: str, address: str | None
) -> None:
    idx = index(*grants)
    assert idx.allows(principal, action, address) is False
    assert idx.explain(principal, action, address) is None


@pytest.mark.parametrize(
    ("pattern", "address", "allowed"),
    [
        ("dev", "dev/stripe/x", True),
        ("dev/stripe", "dev/stripe/x", True),
        ("dev/stripe/x", "dev/stripe/x", True),
        ("dev/*/x", "dev/github/x", True),
        ("dev/s*", "dev/stripe/x", True),
        ("dev/s*", "dev/github/x", False),
        ("dev/stripe/b?lling", "dev/stripe/billing", True),
        ("dev/stripe/b?lling", "dev/stripe/bllling", True),
        ("dev/stripe/b?lling", "dev/stripe/blling", False),
        ("d?v", "dev/stripe/x", True),
        ("d*", "dev/stripe/x", True),
        ("*", "dev/stripe/x", True),
        ("*/stripe", "dev/stripe/x", True),
        ("*/stripe", "stage/stripe/x", True),
        ("*/stripe", "stage/github/x", False),
        ("dev/stripe", "cw://dev/stripe/x", True),
        ("dev/stripe", "dev/stripe/x#api_key", True),
        ("dev/stripe/x", "dev/stripe/x#api_key", True),
        ("dev/stripe/x", "dev/stripe/x#", False),
    ],
)
def test_pattern_matching(pattern: str, address: str, allowed: bool) -> None:
    idx = index(grant(pattern, "read"))
    assert idx.allows("alice", "read", address) is allowed


@pytest.mark.parametrize(
    ("pattern", "address", "allowed"),
    [
        ("*/stripe", "prod/stripe/x", False),
        ("*/stripe", "dev/stripe/x", True),
        ("*", "prod/stripe/x", False),
        ("*", "dev/stripe/x", True),
        ("*/*/x", "prod/stripe/x", False),
        ("p?od", "prod/stripe/x", False),
        ("p*", "prod/stripe/x", False),
        ("p*", "preview/stripe/x", True),
        ("pro?", "prod/stripe/x", False),
        ("prod", "prod/stripe/x", True),
        ("prod/*", "prod/stripe/x", True),
        ("prod/*/*", "prod/stripe/x", True),
        ("prod/stripe", "prod/stripe/x", True),
        ("prod/stripe/x", "prod/stripe/x", True),
        ("prod/s*", "prod/stripe/x", True),
        ("prod/stripe", "prod/github/x", False),
        ("prod", "production/stripe/x", False),
        ("*", "production/stripe/x", True),
        ("*", "staging/stripe/x", False),
    ],
)
def test_protected_environments(pattern: str, address: str, allowed: bool) -> None:
    idx = index(grant(pattern, "admin"), protected={"prod", "staging"})
    for action in ACTIONS:
        assert idx.allows("alice", action, address) is allowed


def test_unprotected_store_lets_wildcards_reach_prod() -> None:
    idx = index(grant("*/stripe", "read"), protected=set())
    assert idx.allows("alice", "read", "prod/stripe/x")


@pytest.mark.parametrize(
    ("pattern", "granted", "action", "address", "allowed"),
    [
        ("*", "admin", "admin", None, True),
        ("*/*", "admin", "admin", None, True),
        ("*/*/*", "admin", "admin", None, True),
        ("*", "admin", "admin", "dev/stripe/x", True),
        ("*", "admin", "admin", "prod/stripe/x", False),  # wildcard env never reaches prod
        ("*", "admin", "read", "prod/stripe/x", False),
        ("prod", "admin", "admin", "prod/stripe/x", True),
        ("prod", "admin", "admin", None, False),
        ("prod/*/*", "admin", "admin", None, False),
        ("dev", "admin", "admin", None, False),
        ("*/stripe", "admin", "admin", None, False),
        ("*/*/x", "admin", "admin", None, False),
        ("?", "admin", "admin", None, False),
        ("*", "write,read,rotate,use", "admin", None, False),
        ("*", "write", "write", None, False),
        ("*", "read", "read", None, False),
        ("*", "describe", "describe", None, True),  # listing, open to all
        ("dev", "read", "describe", None, True),
        ("*", "admin", "write", None, True),
        ("*", "admin", "fly", None, False),
    ],
)
def test_store_wide(
    pattern: str, granted: str, action: str, address: str | None, allowed: bool
) -> None:
    idx = index(grant(pattern, granted))
    assert idx.allows("alice", action, address) is allowed


@pytest.mark.parametrize("principal", ["alice", "bob", "svc:deploy"])
def test_listing_is_open_to_every_principal(principal: str) -> None:
    idx = index(grant("dev", "read", principal="alice"))
    assert idx.allows(principal, "describe", None)
    assert idx.explain(principal, "describe", None) is None


G1 = grant("dev", "read", gid="g1")
G2 = grant("dev/stripe", "write", gid="g2")
G3 = grant("*/stripe/x", "admin", gid="g3")
G4 = grant("*", "admin", gid="g4")
G5 = grant("prod/stripe", "use", gid="g5")
G6 = grant("dev", "read", principal="bob", gid="g6")


@pytest.mark.parametrize(
    ("principal", "action", "address", "expected"),
    [
        ("alice", "read", "dev/stripe/x", "g1"),
        ("alice", "use", "dev/stripe/x", "g1"),
        ("alice", "describe", "dev/stripe/x", "g1"),
        ("alice", "write", "dev/stripe/x", "g2"),
        ("alice", "rotate", "dev/stripe/x", "g3"),
        ("alice", "rotate", "dev/stripe/y", "g4"),
        ("alice", "admin", "dev/github/y", "g4"),
        ("alice", "admin", None, "g4"),
        ("alice", "use", "prod/stripe/x", "g5"),
        ("alice", "read", "prod/stripe/x", None),
        ("alice", "describe", "prod/stripe/x", "g5"),
        ("alice", "describe", "prod/github/x", None),
        ("bob", "read", "dev/stripe/x", "g6"),
        ("bob", "write", "dev/stripe/x", None),
        ("carol", "read", "dev/stripe/x", None),
    ],
)
def test_explain(principal: str, action: str, address: str | None, expected: str | None) -> None:
    idx = index(G1, G2, G3, G4, G5, G6)
    found = idx.explain(principal, action, address)
    assert (found.id if found else None) == expected
    assert idx.allows(principal, action, address) is (expected is not None)


def test_explain_prefers_the_earliest_grant() -> None:
    late, early = grant("*/stripe", "read", gid="late"), grant("dev/stripe/x", "read", gid="early")
    assert index(early, late).explain("alice", "read", "dev/stripe/x") == early
    assert index(late, early).explain("alice", "read", "dev/stripe/x") == late


def test_grants_of() -> None:
    idx = index(G1, G6, G2)
    assert idx.grants_of("alice") == [G1, G2]
    assert idx.grants_of("bob") == [G6]
    assert idx.grants_of("carol") == []
    idx.grants_of("alice").clear()
    assert idx.grants_of("alice") == [G1, G2]


def test_index_normalises_short_patterns() -> None:
    raw = Grant("g", "alice", "dev/stripe", frozenset({"read"}))
    idx = index(raw)
    assert idx.allows("alice", "read", "dev/stripe/x")
    assert idx.explain("alice", "read", "dev/stripe/x") == raw


def test_index_refuses_invalid_patterns() -> None:
    with pytest.raises(InvalidAddress):
        index(Grant("g", "alice", "../x", frozenset({"read"})))


def test_index_ignores_unknown_granted_actions() -> None:
    idx = index(Grant("g", "alice", "dev", frozenset({"fly"})))
    assert not idx.allows("alice", "describe", "dev/stripe/x")
    assert not idx.allows("alice", "fly", "dev/stripe/x")


def test_cache_does_not_leak_between_principals() -> None:
    idx = index(grant("dev", "read", principal="alice"), grant("*", "admin", principal="root"))
    queries = [
        ("read", "dev/stripe/x"),
        ("write", "dev/stripe/x"),
        ("admin", None),
        ("read", "stage/stripe/x"),
    ]
    expected = {
        "alice": [True, False, False, False],
        "bob": [False, False, False, False],
        "root": [True, True, True, True],
    }
    for _ in range(2):  # second round answers from the cache
        for principal, answers in expected.items():
            got = [idx.allows(principal, action, address) for action, address in queries]
            assert got == answers, principal


def test_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grants_module, "_CACHE_MAX", 50)
    idx = index(grant("dev", "read"))
    for i in range(500):
        assert idx.allows("alice", "read", f"dev/s/n{i}")
        assert not idx.allows("alice", "read", f"stage/s/n{i}")
    assert len(idx._cache) <= 50
    assert idx.allows("alice", "read", "dev/s/n0")
    assert not idx.allows("alice", "write", "dev/s/n0")


def test_protected_set_is_exposed() -> None:
    assert index(protected={"prod", "live"}).protected == {"prod", "live"}


# --- the index agrees with a naive evaluator --------------------------------------------------


def reference_allows(
    grants: list[Grant], protected: set[str], principal: str, action: str, address: str | None
) -> bool:
    """Straight from the rules, with no indexing or caching."""
    if action not in ACTIONS:
        return False
    if address is None:
        if action == "describe":
            return bool(principal)
        return any(
            g.principal == principal and g.pattern == "*/*/*" and "admin" in g.actions
            for g in grants
        )
    env = address.split("/")[0]
    for g in grants:
        if g.principal != principal:
            continue
        effective = set(g.actions)
        if "admin" in effective:
            effective = set(ACTIONS)
        if "read" in effective:
            effective.add("use")
        if effective:
            effective.add("describe")
        if action not in effective:
            continue
        genv = g.pattern.split("/")[0]
        if env in protected and ("*" in genv or "?" in genv):
            continue
        if all(
            fnmatchcase(a, p) for a, p in zip(address.split("/"), g.pattern.split("/"), strict=True)
        ):
            return True
    return False


LITERALS = ["prod", "dev", "pr"]  # few names, so every address can be asked about
WILD = ["*", "*", "?", "p*", "p?od", "*d", "d?v", "?r*", "??"]  # "*" twice: store-wide grants
PRINCIPALS = ["alice", "bob", "svc"]
ALL_ADDRESSES: list[str | None] = [
    None,
    *(f"{e}/{s}/{n}" for e in LITERALS for s in LITERALS for n in LITERALS),
]
segment_patterns = st.sampled_from(LITERALS + WILD)
patterns = st.lists(segment_patterns, min_size=1, max_size=3).map("/".join)
grant_strategy = st.builds(
    lambda i, who, pat, acts: Grant(f"g{i}", who, normalize_pattern(pat), frozenset(acts)),
    st.integers(0, 10_000),
    st.sampled_from(PRINCIPALS),
    patterns,
    st.sets(st.sampled_from(ACTIONS), min_size=1, max_size=3),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(grant_strategy, max_size=6), st.sets(st.sampled_from(LITERALS), max_size=2))
def test_index_agrees_with_reference(grants: list[Grant], protected: set[str]) -> None:
    """Every principal, action and address (the space is small enough to ask them all)."""
    idx = GrantIndex(grants, protected)
    for principal in [*PRINCIPALS, ""]:
        for action in [*ACTIONS, "fly"]:
            for address in ALL_ADDRESSES:
                expected = reference_allows(grants, protected, principal, action, address)
                assert idx.allows(principal, action, address) is expected
                assert idx.allows(principal, action, address) is expected  # cached
                found = idx.explain(principal, action, address)
                if found is not None:
                    assert found in grants
                    assert reference_allows([found], protected, principal, action, address)
                else:
                    assert not expected or (address is None and action == "describe")
