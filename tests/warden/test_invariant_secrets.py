"""Invariant 1: no secret value reaches disk, logs, exceptions, reprs or the audit log unless
a caller explicitly asked to read it."""

from __future__ import annotations

import base64
import copy
import json
import logging
import pickle
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from credwarden import CredwardenError, Secret, ValidationError, Warden
from credwarden.secret import MASK
from tests.conftest import CANARY
from tests.rawdb import stored_bytes

# Every kind, with the canary only in its secret fields (usernames, env var names and other
# plain fields are not secret: the store may see them).
SECRETS: dict[str, tuple[str, dict[str, str]]] = {
    "prod/stripe/billing": ("api_key", {"api_key": CANARY + "-apikey"}),
    "prod/db/main": ("basic", {"username": "svc-user", "password": CANARY + " pass word"}),
    "prod/misc/token": ("secret", {"value": CANARY + "\nmulti-line secret"}),
    "prod/app/settings": ("env", {"DATABASE_URL": CANARY + "-env", "OTHER": CANARY + "-2"}),
}


def leak_forms(secret: str) -> list[bytes]:
    """The canary as it could show up: plain, or base64 at any alignment, or hex."""
    raw = secret.encode()
    forms = [raw, raw.hex().encode()]
    for shift in range(3):
        b64 = base64.b64encode(raw[shift:])
        forms.append(b64[4:-4])  # the middle does not depend on what came before or after
    return forms


def assert_no_canary(*things: Any) -> None:
    for thing in things:
        if isinstance(thing, bytes):
            data = thing
        elif isinstance(thing, str):
            data = thing.encode()
        else:
            data = (repr(thing) + "\n" + str(thing)).encode()
        for form in leak_forms(CANARY):
            assert form not in data, f"the canary leaked into {data[:300]!r}"


def exception_text(exc: BaseException) -> str:
    parts = [repr(exc), str(exc), "".join(traceback.format_exception(exc))]
    if isinstance(exc, CredwardenError):
        parts.append(json.dumps(exc.to_dict()))
        parts.append(str(exc.hint))
    return "\n".join(parts)


def raises_without_canary(
    op: Callable[[], object], error: type[BaseException] = CredwardenError
) -> BaseException:
    with pytest.raises(error) as info:
        op()
    assert_no_canary(exception_text(info.value))
    return info.value


def _store_all(w: Warden) -> None:
    for addr, (kind, fields) in SECRETS.items():
        info = w.add(addr, kind, fields, description="canary holder", tags={"team": "qa"})
        assert_no_canary(info, info.to_dict())


def test_canary_never_leaks(
    warden: Warden,
    database_url: str,
    open_warden: Callable[..., Warden],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    outputs: list[Any] = []
    _store_all(warden)
    warden.add("prod/misc/bystander", "secret", {"value": "not the canary"})

    for addr in SECRETS:
        info = warden.describe(addr)
        outputs += [info, info.to_dict(), json.dumps(info.to_dict())]
        outputs.append(warden.history(addr))
        outputs.append(warden.update(addr, description="metadata only", owner="qa"))
    outputs.append(warden.list())
    outputs.append([i.to_dict() for i in warden.list(env="prod")])

    # New versions and a rollback re-seal the values; history and results stay value-free.
    outputs.append(warden.update("prod/misc/token", fields={"value": CANARY + "-v2"}))
    outputs.append(warden.rollback("prod/misc/token", 1))
    outputs.append(warden.history("prod/misc/token"))
    warden.remove("prod/misc/bystander")

    # Reads the caller asked for: the value is there, but every wrapper masks it.
    got = warden.get("prod/stripe/billing")
    assert got.reveal() == CANARY + "-apikey"
    cred = warden.read("prod/db/main")
    assert cred.reveal()["password"] == CANARY + " pass word"
    headers = warden.headers("prod/stripe/billing")
    env = warden.env_vars(env="prod")
    assert env["DATABASE_URL"].reveal() == CANARY + "-env"
    outputs += [got, f"{got}", f"{got!r}", f"{got:>40}", "%s" % (got,), cred, cred.info]  # noqa: UP031
    outputs += [cred.values, headers, env, list(env.values())]

    # Keys: rotation re-wraps every data key; a second Warden reads through it.
    outputs.append(warden.rotate_key())
    other = open_warden()
    assert other.get("prod/app/settings#OTHER").reveal() == CANARY + "-2"
    outputs += [warden, other, warden.settings, other.settings, warden.records.barrier]

    # Errors raised with the canary inside bad input name the problem, never the value.
    for op in (
        lambda: warden.add("prod/x/a", "api_key", {"api_key": CANARY + " trailing"}),
        lambda: warden.add("prod/x/b", "api_key", {"api_key": CANARY + "\n"}),
        lambda: warden.add("prod/x/c", "api_key", {"api_key": CANARY * 3000}),
        lambda: warden.add("prod/x/d", "secret", {"value": CANARY + "\x00"}),
        lambda: warden.add("prod/x/e", "basic", {"username": "u", "password": CANARY + "\r"}),
        lambda: warden.add("prod/x/f", "env", {"BAD-NAME": CANARY}),
        lambda: warden.add("prod/x/g", "env", {"1BAD": CANARY}),
        lambda: warden.add("prod/x/h", "secret", {"value": CANARY, "env_var": "not valid"}),
        lambda: warden.add("prod/x/i", "secret", {"valu": CANARY}),
        lambda: warden.add("prod/x/j", "api_key", {"key": CANARY}),
        lambda: warden.add("prod/x/k", "nokind", {"value": CANARY}),
        lambda: warden.add("qa/x/l", "secret", {"value": CANARY}),
        lambda: warden.add("prod/stripe/billing", "secret", {"value": CANARY}),
        lambda: warden.update("prod/stripe/billing", fields={"api_key": CANARY + " x"}),
        lambda: warden.update("prod/stripe/billing", fields={"nope": CANARY}),
        lambda: warden.update("prod/misc/gone", fields={"value": CANARY}),
        lambda: warden.update(
            "prod/stripe/billing", fields={"api_key": CANARY}, expected_version=9
        ),
        lambda: warden.import_entries([("OK", "x"), ("1BAD", CANARY)], env="prod", service="s"),
        lambda: warden.import_entries([("OK", CANARY + "\x00")], env="prod", service="s"),
        lambda: warden.import_entries([("TOKEN", CANARY)], env="prod", service="misc"),
        lambda: warden.get("prod/app/settings"),
        lambda: warden.get("prod/app/settings#MISSING"),
        lambda: warden.headers("prod/misc/token"),
        lambda: warden.rollback("prod/misc/token", 3),
    ):
        outputs.append(raises_without_canary(op))

    # Two credentials giving the same variable.
    warden.add("prod/other/token", "secret", {"value": CANARY + "-dup"})
    outputs.append(raises_without_canary(lambda: warden.env_vars(env="prod"), ValidationError))

    events = warden.audit_events()
    outputs += [events, json.dumps([e.to_dict() for e in events])]
    report = warden.verify_audit()
    assert report.ok
    outputs.append(report)

    assert_no_canary(*outputs)
    assert_no_canary("\n".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records))
    assert_no_canary(caplog.text)
    assert_no_canary(stored_bytes(database_url))


def test_wrong_keys_and_failures_do_not_leak(warden: Warden, database_url: str) -> None:
    """Crypto failures name the record problem, not a value, and the store stays sealed."""
    _store_all(warden)
    from tests.rawdb import raw

    with raw(database_url) as db:
        rows = db.execute("SELECT key, body FROM records WHERE ns = 'ver' ORDER BY key")
        (k1, b1), (k2, b2) = rows[0], rows[1]
        db.execute("UPDATE records SET body = ? WHERE ns = 'ver' AND key = ?", (b2, k1))
        db.execute("UPDATE records SET body = ? WHERE ns = 'ver' AND key = ?", (b1, k2))
    failures = 0
    for addr in SECRETS:
        try:
            warden.read(addr)
        except CredwardenError as exc:
            failures += 1
            assert_no_canary(exception_text(exc))
    assert failures == 2
    assert_no_canary(stored_bytes(database_url))


def test_secret_masks_everywhere() -> None:
    s = Secret(CANARY)
    assert s.reveal() == CANARY
    assert str(s) == MASK and f"{s}" == MASK and f"{s:>30}" == MASK and "%s" % (s,) == MASK  # noqa: UP031
    assert repr(s) == f"Secret('{MASK}')" and f"{s!r}" == repr(s)
    assert_no_canary(s, [s], {"k": s}, (s,), str([s]), repr({"k": s}))
    assert not hasattr(s, "__dict__")
    assert Secret(s).reveal() == CANARY  # wrapping a Secret does not nest
    assert len(s) == len(CANARY) and bool(s) and not Secret("")
    with pytest.raises(TypeError):
        Secret(b"bytes")  # type: ignore[arg-type]
    for dump in (pickle.dumps, copy.copy, copy.deepcopy):
        with pytest.raises(TypeError) as exc:
            dump(s)
        assert_no_canary(exception_text(exc.value))


def test_secret_equality_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import hmac

    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert Secret("abc") == Secret("abc")
    assert Secret("abc") != Secret("abd")
    assert Secret("é😀") == Secret("é😀")
    assert len(calls) == 3
    assert Secret("abc") != "abc"  # a Secret never equals a bare string
    assert hash(Secret("abc")) == hash(Secret("abc"))


@pytest.fixture
def url_with_password() -> Iterator[str]:
    """A PostgreSQL URL whose password is the canary. The local server trusts its clients and
    ignores the password, which lets us see where the URL's password shows up."""
    from tests.pg import fresh_database

    with fresh_database() as url:
        yield url.replace("postgres@", f"postgres:{CANARY}@", 1)


def test_database_password_not_in_reports(url_with_password: str) -> None:
    assert CANARY in url_with_password
    w, report = Warden.init(database_url=url_with_password)
    try:
        assert_no_canary(report, report.to_dict(), w.settings, w.audit_events())
        w.add("dev/a/b", "secret", {"value": "x"})
    finally:
        w.close()
    from credwarden.errors import StoreError

    bad = url_with_password.rsplit("/", 1)[0] + "/cw_no_such_database"
    raises_without_canary(lambda: Warden.open(database_url=bad), StoreError)


def test_warden_repr_hides_database_password(url_with_password: str) -> None:
    w, _ = Warden.init(database_url=url_with_password)
    try:
        assert_no_canary(repr(w), str(w))
    finally:
        w.close()
