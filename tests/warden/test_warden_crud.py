"""The facade's operations, end to end on real SQLite and PostgreSQL stores."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import timedelta

import pytest

from credwarden import (
    Conflict,
    NotFound,
    Secret,
    ValidationError,
    Warden,
)
from credwarden.errors import AlreadyExists, InvalidAddress, UnknownKind
from credwarden.model import Credential, CredentialInfo, VersionInfo
from credwarden.timeutil import iso, utcnow
from tests.rawdb import raw, snapshot

ADDR = "prod/stripe/billing"


def _set_rotated_at(url: str, address: str, when: str) -> None:
    """Age a credential's last rotation, as if it had been stored long ago."""
    with raw(url) as db:
        ((body,),) = db.execute(
            "SELECT body FROM records WHERE ns = 'cred' AND key = ?", (address,)
        )
        rec = json.loads(body)
        rec["rotated_at"] = when
        new = json.dumps(rec, separators=(",", ":"), sort_keys=True).encode()
        db.execute("UPDATE records SET body = ? WHERE ns = 'cred' AND key = ?", (new, address))


# -- add / get / read / describe ---------------------------------------------------------------


def test_add_then_get_read_describe(warden: Warden) -> None:
    info = warden.add(
        ADDR,
        "api_key",
        {"api_key": "sk_live_abc123"},
        provider="stripe",
        description="Billing key",
        owner="team-payments",
        tags={"team": "payments", "cost-center": "42"},
        links=["https://dashboard.stripe.com/apikeys"],
    )
    assert isinstance(info, CredentialInfo)
    assert info.address == ADDR
    assert info.kind == "api_key"
    assert info.version == 1
    assert info.fields == {"api_key": None}
    assert info.health == "ok"
    assert info.provider == "stripe"
    assert info.description == "Billing key"
    assert info.owner == "team-payments"
    assert info.tags == {"team": "payments", "cost-center": "42"}
    assert info.links == ["https://dashboard.stripe.com/apikeys"]
    assert info.created_at == info.updated_at == info.rotated_at
    assert info.expires_at is None and info.rotate_every is None

    value = warden.get(ADDR)
    assert isinstance(value, Secret)
    assert value.reveal() == "sk_live_abc123"
    assert warden.get(f"{ADDR}#api_key").reveal() == "sk_live_abc123"
    assert warden.get(f"cw://{ADDR}#api_key").reveal() == "sk_live_abc123"

    cred = warden.read(ADDR)
    assert isinstance(cred, Credential)
    assert isinstance(cred.values["api_key"], Secret)
    assert cred.reveal() == {"api_key": "sk_live_abc123"}
    assert cred.info.id == info.id and cred.info.version == 1

    described = warden.describe(ADDR)
    assert described.id == info.id
    assert described.fields == {"api_key": None}
    assert described.tags == info.tags and described.links == info.links
    d = described.to_dict()
    assert d["secret_fields"] == ["api_key"]
    assert "sk_live_abc123" not in json.dumps(d)


def test_add_rejects_existing_address(warden: Warden) -> None:
    warden.add(ADDR, "secret", {"value": "one"})
    with pytest.raises(AlreadyExists) as exc:
        warden.add(ADDR, "secret", {"value": "two"})
    assert isinstance(exc.value, Conflict)
    assert exc.value.exit_code == 6
    assert ADDR in exc.value.message and exc.value.hint
    assert warden.get(ADDR).reveal() == "one"


def test_missing_credential_is_not_found(warden: Warden) -> None:
    for op in (
        lambda: warden.get("dev/nope/nothing"),
        lambda: warden.read("dev/nope/nothing"),
        lambda: warden.describe("dev/nope/nothing"),
        lambda: warden.history("dev/nope/nothing"),
        lambda: warden.headers("dev/nope/nothing"),
        lambda: warden.remove("dev/nope/nothing"),
        lambda: warden.update("dev/nope/nothing", description="x"),
        lambda: warden.rollback("dev/nope/nothing", 1),
    ):
        with pytest.raises(NotFound) as exc:
            op()
        assert exc.value.exit_code == 4
        assert "dev/nope/nothing" in exc.value.message
        assert exc.value.hint


# -- list ----------------------------------------------------------------------------------------


def test_list_filters(warden: Warden) -> None:
    past = iso(utcnow() - timedelta(days=1))
    warden.add("dev/a/x", "api_key", {"api_key": "k1"})
    warden.add("dev/b/y", "secret", {"value": "s"})
    warden.add("prod/a/z", "basic", {"username": "u", "password": "p"})
    warden.add("staging/c/w", "env", {"FOO": "1"}, expires_at=past)

    def addrs(**kw: str) -> list[str]:
        return [i.address for i in warden.list(**kw)]

    assert addrs() == ["dev/a/x", "dev/b/y", "prod/a/z", "staging/c/w"]
    assert addrs(env="dev") == ["dev/a/x", "dev/b/y"]
    assert addrs(service="a") == ["dev/a/x", "prod/a/z"]
    assert addrs(env="dev", service="a") == ["dev/a/x"]
    assert addrs(kind="basic") == ["prod/a/z"]
    assert addrs(kind="env") == ["staging/c/w"]
    assert addrs(health="expired") == ["staging/c/w"]
    assert addrs(health="ok") == ["dev/a/x", "dev/b/y", "prod/a/z"]
    assert addrs(env="prod", kind="api_key") == []
    assert addrs(env="qa") == []
    # "de" is a prefix of "dev" but not an environment: nothing of dev leaks into it.
    assert addrs(env="de") == []

    infos = warden.list(env="prod")
    assert infos[0].fields == {"password": None, "username": "u"}

    with pytest.raises(ValidationError) as exc:
        warden.list(env="Dev Bad")
    assert exc.value.hint
    with pytest.raises(ValidationError):
        warden.list(service="../x")
    with pytest.raises(UnknownKind) as kexc:
        warden.list(kind="nope")
    assert "api_key" in (kexc.value.hint or "")


# -- update --------------------------------------------------------------------------------------


def test_update_fields_makes_a_version_metadata_does_not(warden: Warden) -> None:
    first = warden.add(ADDR, "api_key", {"api_key": "k1", "env_var": "STRIPE_KEY"})

    meta = warden.update(ADDR, description="now documented", tags={"team": "pay"})
    assert meta.version == 1
    assert meta.description == "now documented" and meta.tags == {"team": "pay"}
    assert meta.rotated_at == first.rotated_at
    assert meta.updated_at >= first.updated_at
    assert warden.get(ADDR).reveal() == "k1"
    assert len(warden.history(ADDR)) == 1

    new = warden.update(ADDR, fields={"api_key": Secret("k2")}, note="rotated by hand")
    assert new.version == 2
    assert new.rotated_at >= first.rotated_at
    assert new.description == "now documented"  # metadata kept across versions
    assert warden.get(ADDR).reveal() == "k2"
    assert warden.get(f"{ADDR}#env_var").reveal() == "STRIPE_KEY"  # other fields kept
    assert warden.history(ADDR)[0].note == "rotated by hand"

    both = warden.update(ADDR, fields={"api_key": "k3"}, owner="alice", expected_version=2)
    assert both.version == 3 and both.owner == "alice"

    unset = warden.update(ADDR, unset=["env_var"])
    assert unset.version == 4
    assert unset.fields == {"api_key": None}

    cleared = warden.update(ADDR, description=None, tags=None)
    assert cleared.version == 4
    assert cleared.description is None and cleared.tags == {}
    assert warden.describe(ADDR).description is None

    with pytest.raises(ValidationError) as exc:
        warden.update(ADDR)
    assert exc.value.hint
    with pytest.raises(ValidationError) as exc:
        warden.update(ADDR, colour="blue")
    assert "colour" in exc.value.message
    with pytest.raises(ValidationError):
        warden.update(ADDR, unset=["header"])  # not set: nothing to unset
    with pytest.raises(ValidationError):
        warden.update(ADDR, unset=["api_key"])  # required
    with pytest.raises(Conflict) as cexc:
        warden.update(ADDR, fields={"api_key": "k9"}, expected_version=1)
    assert cexc.value.exit_code == 6
    assert warden.get(ADDR).reveal() == "k3"
    assert warden.describe(ADDR).version == 4


# -- history / rollback --------------------------------------------------------------------------


def test_history_newest_first_without_values_and_rollback(warden: Warden) -> None:
    warden.add(ADDR, "basic", {"username": "alice", "password": "pw-one"})
    warden.update(ADDR, fields={"password": "pw-two"})
    warden.update(ADDR, fields={"password": "pw-three", "username": "bob"}, note="third")

    hist = warden.history(ADDR)
    assert [h.version for h in hist] == [3, 2, 1]
    assert [h.current for h in hist] == [True, False, False]
    assert all(isinstance(h, VersionInfo) for h in hist)
    assert hist[0].note == "third" and hist[2].note == "created"
    assert hist[0].fields == ["password", "username"]
    assert all(h.created_by.startswith("local:") for h in hist)
    text = repr(hist) + json.dumps([h.to_dict() for h in hist])
    for value in ("pw-one", "pw-two", "pw-three"):
        assert value not in text

    back = warden.rollback(ADDR, 1)
    assert back.version == 4
    assert warden.get(ADDR).reveal() == "pw-one"
    assert warden.get(f"{ADDR}#username").reveal() == "alice"
    hist = warden.history(ADDR)
    assert [h.version for h in hist] == [4, 3, 2, 1]
    assert hist[0].note == "rollback to v1" and hist[0].current

    with pytest.raises(ValidationError):
        warden.rollback(ADDR, 4)  # already current
    with pytest.raises(NotFound) as exc:
        warden.rollback(ADDR, 99)
    assert "99" in exc.value.message and exc.value.hint
    with pytest.raises(Conflict):
        warden.rollback(ADDR, 2, expected_version=3)
    again = warden.rollback(ADDR, 2, expected_version=4)
    assert again.version == 5 and warden.get(ADDR).reveal() == "pw-two"


# -- remove --------------------------------------------------------------------------------------


def test_remove_shreds_versions(warden: Warden, database_url: str) -> None:
    info = warden.add(ADDR, "secret", {"value": "v1"})
    warden.update(ADDR, fields={"value": "v2"})
    other = warden.add("prod/stripe/other", "secret", {"value": "keep"})

    with pytest.raises(Conflict):
        warden.remove(ADDR, expected_version=1)
    assert warden.get(ADDR).reveal() == "v2"

    warden.remove(ADDR, expected_version=2)
    with pytest.raises(NotFound):
        warden.describe(ADDR)
    with raw(database_url) as db:
        left = db.execute("SELECT key FROM records WHERE ns = 'ver'")
    assert not [k for (k,) in left if k.startswith(info.id)]
    assert [k for (k,) in left if k.startswith(other.id)]
    assert warden.get("prod/stripe/other").reveal() == "keep"

    again = warden.add(ADDR, "secret", {"value": "fresh"})
    assert again.version == 1 and again.id != info.id
    assert warden.get(ADDR).reveal() == "fresh"
    assert [h.version for h in warden.history(ADDR)] == [1]


# -- fields --------------------------------------------------------------------------------------


def test_get_named_fields(warden: Warden) -> None:
    warden.add("dev/db/main", "basic", {"username": "alice", "password": "hunter2"})
    assert warden.get("dev/db/main").reveal() == "hunter2"  # the main field
    assert warden.get("dev/db/main#password").reveal() == "hunter2"
    assert warden.get("dev/db/main#username").reveal() == "alice"  # a plain field

    warden.add(
        "dev/api/key",
        "api_key",
        {"api_key": "k", "header": "X-Api-Key", "scheme": "-"},
    )
    assert warden.get("dev/api/key#header").reveal() == "X-Api-Key"
    with pytest.raises(NotFound) as exc:
        warden.get("dev/api/key#env_var")
    assert "env_var" in exc.value.message
    assert "api_key" in (exc.value.hint or "") and "header" in (exc.value.hint or "")

    warden.add("dev/app/one", "env", {"ONLY": "1"})
    assert warden.get("dev/app/one").reveal() == "1"

    warden.add("dev/app/many", "env", {"DATABASE_URL": "postgres://x", "REDIS_URL": "redis://y"})
    with pytest.raises(ValidationError) as vexc:
        warden.get("dev/app/many")
    text = f"{vexc.value.message} {vexc.value.hint}"
    assert "DATABASE_URL" in text and "REDIS_URL" in text
    assert "postgres://x" not in text
    assert warden.get("dev/app/many#REDIS_URL").reveal() == "redis://y"

    with pytest.raises(InvalidAddress):
        warden.get("dev/app/many#")
    with pytest.raises(InvalidAddress):
        warden.get("dev/app/many#bad field")


# -- environments --------------------------------------------------------------------------------


def test_unknown_environment_and_add_environment(
    warden: Warden, open_warden: Callable[..., Warden]
) -> None:
    assert warden.environments == ["dev", "staging", "prod"]
    with pytest.raises(ValidationError) as exc:
        warden.add("qa/svc/key", "secret", {"value": "x"})
    assert "qa" in exc.value.message
    assert "environments add qa" in (exc.value.hint or "")
    with pytest.raises(ValidationError) as exc:
        warden.import_entries([("A", "1")], env="qa", service="svc")
    assert "environments add" in (exc.value.hint or "")

    assert warden.add_environment("qa") == ["dev", "staging", "prod", "qa"]
    assert "qa" in warden.environments
    warden.add("qa/svc/key", "secret", {"value": "x"})
    assert warden.get("qa/svc/key").reveal() == "x"

    later = open_warden()
    assert later.environments == ["dev", "staging", "prod", "qa"]
    with pytest.raises(AlreadyExists):
        warden.add_environment("qa")
    for bad in ("QA", "", "a b", "../x", "x" * 65):
        with pytest.raises(ValidationError) as bexc:
            warden.add_environment(bad)
        assert bexc.value.hint


def test_environment_added_elsewhere_is_usable(
    warden: Warden, open_warden: Callable[..., Warden]
) -> None:
    server = open_warden()  # a long-running process, opened before the CLI adds `qa`
    warden.add_environment("qa")
    server.add("qa/svc/key", "secret", {"value": "x"})
    assert server.get("qa/svc/key").reveal() == "x"


# -- import --------------------------------------------------------------------------------------


def test_import_entries(warden: Warden, database_url: str) -> None:
    out = warden.import_entries(
        [("API_TOKEN", "t1"), ("DATABASE_URL", "postgres://u:p@h/db")], env="dev", service="app"
    )
    assert [i.address for i in out] == ["dev/app/api-token", "dev/app/database-url"]
    assert all(i.kind == "secret" and i.version == 1 for i in out)
    assert warden.get("dev/app/api-token").reveal() == "t1"
    assert warden.get("dev/app/database-url#env_var").reveal() == "DATABASE_URL"
    env = warden.env_vars(env="dev")
    assert {k: v.reveal() for k, v in env.items()} == {
        "API_TOKEN": "t1",
        "DATABASE_URL": "postgres://u:p@h/db",
    }

    # One invalid entry: nothing at all is stored.
    before = snapshot(database_url)
    for bad in (
        [("NEW_ONE", "x"), ("BAD", "a\x00b")],
        [("NEW_ONE", "x"), ("1BAD", "y")],
        [("NEW_ONE", "x"), ("A_B", "1"), ("a_b", "2")],  # both become dev/app/a-b
        [("NEW_ONE", "x"), ("NAME WITH SPACE", "1")],
        [],
    ):
        with pytest.raises(ValidationError) as exc:
            warden.import_entries(bad, env="dev", service="app")
        assert exc.value.message
    assert snapshot(database_url) == before

    # One existing address without overwrite: nothing stored either.
    with pytest.raises(AlreadyExists) as aexc:
        warden.import_entries([("NEW_TWO", "x"), ("API_TOKEN", "t2")], env="dev", service="app")
    assert "dev/app/api-token" in aexc.value.message
    assert "overwrite" in (aexc.value.hint or "")
    assert snapshot(database_url)["records"] == before["records"]
    with pytest.raises(NotFound):
        warden.describe("dev/app/new-two")

    # Over a credential of another kind: refused, nothing stored.
    warden.add("dev/app/stripe-key", "api_key", {"api_key": "k"})
    with pytest.raises(ValidationError):
        warden.import_entries(
            [("NEW_THREE", "x"), ("STRIPE_KEY", "y")], env="dev", service="app", overwrite=True
        )
    with pytest.raises(NotFound):
        warden.describe("dev/app/new-three")

    # With overwrite: existing ones get a new version, new ones version 1.
    out = warden.import_entries(
        [("NEW_TWO", "x"), ("API_TOKEN", "t2")], env="dev", service="app", overwrite=True
    )
    assert [(i.address, i.version) for i in out] == [
        ("dev/app/new-two", 1),
        ("dev/app/api-token", 2),
    ]
    assert warden.get("dev/app/api-token").reveal() == "t2"
    assert [h.version for h in warden.history("dev/app/api-token")] == [2, 1]
    assert warden.history("dev/app/api-token")[0].note == "imported"


# -- env vars ------------------------------------------------------------------------------------


def test_env_vars(warden: Warden, database_url: str) -> None:
    warden.add("dev/stripe/billing", "api_key", {"api_key": "sk"})
    warden.add("dev/db/main", "basic", {"username": "u", "password": "p"})
    warden.add("dev/app/settings", "env", {"FOO": "1", "BAR": "2"})
    warden.add("dev/misc/token", "secret", {"value": "tok"})
    warden.add("dev/misc/named", "secret", {"value": "n", "env_var": "CUSTOM_NAME"})
    warden.add("prod/stripe/billing", "api_key", {"api_key": "prod-key"})

    env = warden.env_vars(env="dev")
    assert all(isinstance(v, Secret) for v in env.values())
    assert {k: v.reveal() for k, v in env.items()} == {
        "BAR": "2",
        "CUSTOM_NAME": "n",
        "DB_MAIN_PASSWORD": "p",
        "DB_MAIN_USERNAME": "u",
        "FOO": "1",
        "STRIPE_BILLING_API_KEY": "sk",
        "TOKEN": "tok",
    }
    assert list(env) == sorted(env)

    only = warden.env_vars(env="dev", only=["dev/stripe/*", "dev/misc/token"])
    assert {k: v.reveal() for k, v in only.items()} == {
        "STRIPE_BILLING_API_KEY": "sk",
        "TOKEN": "tok",
    }
    assert set(warden.env_vars(env="dev", only=["dev/db"])) == {
        "DB_MAIN_USERNAME",
        "DB_MAIN_PASSWORD",
    }
    assert warden.env_vars(env="dev", only=["prod/*"]) == {}
    assert set(warden.env_vars(env="prod")) == {"STRIPE_BILLING_API_KEY"}
    assert warden.env_vars(env="staging") == {}

    # Two credentials giving the same variable: an error naming both, nothing read.
    warden.add("dev/other/token", "secret", {"value": "tok2"})
    before = snapshot(database_url)
    with pytest.raises(ValidationError) as exc:
        warden.env_vars(env="dev")
    assert "TOKEN" in exc.value.message
    assert "dev/misc/token" in exc.value.message and "dev/other/token" in exc.value.message
    assert exc.value.hint
    assert "tok" not in exc.value.message.replace("token", "")
    assert snapshot(database_url) == before
    assert set(warden.env_vars(env="dev", only=["dev/other/*"])) == {"TOKEN"}

    with pytest.raises(ValidationError):
        warden.env_vars(env="Dev")


# -- headers -------------------------------------------------------------------------------------


def test_headers(warden: Warden) -> None:
    warden.add("dev/a/default", "api_key", {"api_key": "k1"})
    warden.add("dev/a/custom", "api_key", {"api_key": "k2", "header": "X-Api-Key", "scheme": "-"})
    warden.add("dev/a/token", "api_key", {"api_key": "k3", "scheme": "Token"})
    warden.add("dev/a/basic", "basic", {"username": "alice", "password": "s3cret"})
    warden.add("dev/a/plain", "secret", {"value": "v"})

    def reveal(address: str) -> dict[str, str]:
        h = warden.headers(address)
        assert all(isinstance(v, Secret) for v in h.values())
        return {k: v.reveal() for k, v in h.items()}

    assert reveal("dev/a/default") == {"Authorization": "Bearer k1"}
    assert reveal("dev/a/custom") == {"X-Api-Key": "k2"}
    assert reveal("dev/a/token") == {"Authorization": "Token k3"}
    assert reveal("dev/a/basic") == {
        "Authorization": "Basic " + base64.b64encode(b"alice:s3cret").decode()
    }
    with pytest.raises(ValidationError) as exc:
        warden.headers("dev/a/plain")
    assert exc.value.hint


# -- health and usage ----------------------------------------------------------------------------


def test_health_from_expiry_and_rotation(warden: Warden, database_url: str) -> None:
    now = utcnow()
    assert warden.add("dev/h/ok", "secret", {"value": "x"}).health == "ok"
    assert (
        warden.add(
            "dev/h/far", "secret", {"value": "x"}, expires_at=iso(now + timedelta(days=60))
        ).health
        == "ok"
    )
    soon = warden.add(
        "dev/h/soon", "secret", {"value": "x"}, expires_at=iso(now + timedelta(days=3))
    )
    assert soon.health == "expiring"
    assert soon.expires_at is not None
    gone = warden.add("dev/h/gone", "secret", {"value": "x"}, expires_at="2020-01-01")
    assert gone.health == "expired"
    assert gone.expires_at is not None and gone.expires_at.startswith("2020-01-01T00:00:00")
    fresh = warden.add("dev/h/rot", "secret", {"value": "x"}, rotate_every=3600)
    assert fresh.health == "ok" and fresh.rotate_every == 3600

    _set_rotated_at(database_url, "dev/h/rot", iso(now - timedelta(hours=2)))
    assert warden.describe("dev/h/rot").health == "rotation_due"
    assert [i.address for i in warden.list(health="rotation_due")] == ["dev/h/rot"]
    assert [i.address for i in warden.list(health="expiring")] == ["dev/h/soon"]
    assert [i.address for i in warden.list(health="expired")] == ["dev/h/gone"]

    # A new version is a rotation; expiry wins over rotation; clearing the expiry heals.
    assert warden.update("dev/h/rot", fields={"value": "y"}).health == "ok"
    assert warden.update("dev/h/gone", rotate_every=60).health == "expired"
    assert warden.update("dev/h/gone", expires_at=None, rotate_every=None).health == "ok"
    assert warden.update("dev/h/ok", expires_at=iso(now - timedelta(seconds=1))).health == (
        "expired"
    )


def test_last_used_after_a_read(warden: Warden) -> None:
    warden.add("dev/u/a", "api_key", {"api_key": "k"})
    warden.add("dev/u/b", "secret", {"value": "v"})
    warden.add("dev/u/c", "secret", {"value": "v"})
    assert warden.describe("dev/u/a").last_used_at is None
    warden.describe("dev/u/a")
    warden.history("dev/u/a")
    warden.list()
    assert warden.describe("dev/u/a").last_used_at is None  # looking is not using

    start = iso(utcnow())
    warden.get("dev/u/a")
    used = warden.describe("dev/u/a").last_used_at
    assert used is not None and used >= start
    warden.headers("dev/u/a")
    later = warden.describe("dev/u/a").last_used_at
    assert later is not None and later >= used
    warden.read("dev/u/b")
    by_addr = {i.address: i.last_used_at for i in warden.list(env="dev")}
    assert by_addr["dev/u/a"] == later
    assert by_addr["dev/u/b"] is not None and by_addr["dev/u/c"] is None
    warden.env_vars(env="dev", only=["dev/u/c"])
    assert warden.describe("dev/u/c").last_used_at is not None
