"""Master keys (sources, errors, init), envelope encryption (AAD binding, KEK rotation)."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from credwarden import MasterKeyError, Warden
from credwarden.crypto.envelope import Keyring
from credwarden.crypto.master import PassphraseSource
from credwarden.errors import CredwardenError, CryptoError, StoreCorrupt
from tests.rawdb import durable_records, raw, snapshot

A = "prod/stripe/billing"
B = "prod/db/main"


def new_key_text() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def ver_rows(url: str) -> dict[str, dict[str, object]]:
    with raw(url) as db:
        return {
            k: json.loads(b)
            for k, b in db.execute("SELECT key, body FROM records WHERE ns = 'ver'")
        }


def ver_key(cred_id: str, version: int) -> str:
    return f"{cred_id}/{version:010d}"


def put_ver(url: str, key: str, body: bytes) -> None:
    with raw(url) as db:
        db.execute("UPDATE records SET body = ? WHERE ns = 'ver' AND key = ?", (body, key))


def get_ver(url: str, key: str) -> bytes:
    with raw(url) as db:
        ((body,),) = db.execute("SELECT body FROM records WHERE ns = 'ver' AND key = ?", (key,))
    return bytes(body)


# -- master key errors ---------------------------------------------------------------------------


def test_master_key_errors_name_their_source_and_write_nothing(
    warden: Warden, database_url: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warden.add(A, "secret", {"value": "v"})
    key_file = home / "master.key"
    good = key_file.read_text().strip()
    before = snapshot(database_url)

    def refused(expect: list[str], hint: str | None = None, init: bool = False) -> None:
        with pytest.raises(MasterKeyError) as exc:
            if init:
                Warden.init()
            else:
                Warden.open()
        assert exc.value.exit_code == 3 and exc.value.code == "master_key"
        for part in expect:
            assert part in exc.value.message, exc.value.message
        if hint is not None:
            assert hint in (exc.value.hint or ""), exc.value.hint
        assert good not in f"{exc.value.message} {exc.value.hint}"
        assert snapshot(database_url) == before

    bad = "this is not base64 at all!"
    monkeypatch.setenv("CREDWARDEN_MASTER_KEY", bad)
    refused(["CREDWARDEN_MASTER_KEY", "base64"], hint="32")
    refused(["CREDWARDEN_MASTER_KEY", "base64"], init=True)
    monkeypatch.setenv("CREDWARDEN_MASTER_KEY", base64.b64encode(os.urandom(16)).decode())
    refused(["CREDWARDEN_MASTER_KEY", "16 bytes", "32"])
    other = new_key_text()
    monkeypatch.setenv("CREDWARDEN_MASTER_KEY", other)
    refused(["CREDWARDEN_MASTER_KEY", "does not open this store"])
    refused(["CREDWARDEN_MASTER_KEY", "does not open this store"], init=True)
    monkeypatch.delenv("CREDWARDEN_MASTER_KEY")

    # The right key from the environment opens it (the key file is not needed then).
    monkeypatch.setenv("CREDWARDEN_MASTER_KEY", good)
    with Warden.open() as w:
        assert w.get(A).reveal() == "v"
        assert w.key_source == "CREDWARDEN_MASTER_KEY"
    monkeypatch.delenv("CREDWARDEN_MASTER_KEY")
    before = snapshot(database_url)

    alt = home.parent / "alt.key"
    alt.write_text(other + "\n")
    alt.chmod(0o600)
    monkeypatch.setenv("CREDWARDEN_MASTER_KEY_FILE", str(alt))
    refused([str(alt), "does not open this store"])
    monkeypatch.delenv("CREDWARDEN_MASTER_KEY_FILE")

    key_file.chmod(0o644)
    refused([str(key_file), "readable by other users"], hint=f"chmod 600 {key_file}")
    key_file.chmod(0o640)
    refused([str(key_file), "readable by other users"], hint="chmod 600")
    key_file.chmod(0o600)

    moved = home / "master.key.moved"
    key_file.rename(moved)
    refused([str(key_file), "does not exist"], hint="credwarden init")
    # init never makes a new key for an existing store.
    refused([str(key_file), "does not exist"], init=True)
    assert not key_file.exists()
    moved.rename(key_file)
    with Warden.open() as w:
        assert w.get(A).reveal() == "v"


def test_init_is_idempotent_and_keeps_the_key_file(
    database_url: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREDWARDEN_DATABASE_URL", database_url)
    w1, first = Warden.init()
    with w1:
        w1.add(A, "secret", {"value": "v"})
    key_file = home / "master.key"
    content = key_file.read_bytes()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.stat().st_mode) & 0o077 == 0
    assert first.created and first.key_source == f"key file {key_file}"
    assert first.database == database_url

    for _ in range(2):
        w2, again = Warden.init()
        with w2:
            assert not again.created
            assert again.store_id == first.store_id
            assert w2.get(A).reveal() == "v"
    assert key_file.read_bytes() == content
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    with Warden.open() as w:
        inits = [e for e in w.audit_events() if e.action == "init"]
    assert [e.detail["created"] for e in inits] == [True, False, False]


def test_init_with_env_key_writes_no_key_file(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = new_key_text()
    monkeypatch.setenv("CREDWARDEN_MASTER_KEY", key)
    w, report = Warden.init()
    with w:
        w.add(A, "secret", {"value": "v"})
    assert report.key_source == "CREDWARDEN_MASTER_KEY"
    assert not (home / "master.key").exists()
    assert key not in (home / "credwarden.db").read_bytes().decode("latin-1")
    with Warden.open() as w:
        assert w.get(A).reveal() == "v"
    monkeypatch.delenv("CREDWARDEN_MASTER_KEY")
    with pytest.raises(MasterKeyError) as exc:
        Warden.open()
    assert "does not exist" in exc.value.message


def test_passphrase_source(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(PassphraseSource, "MEMORY_KIB", 1024)
    monkeypatch.setattr(PassphraseSource, "TIME_COST", 1)
    monkeypatch.setenv("CREDWARDEN_MASTER_KEY_SOURCE", "passphrase")

    monkeypatch.setenv("CREDWARDEN_PASSPHRASE", "too short")
    with pytest.raises(MasterKeyError) as exc:
        Warden.init()
    assert "12" in exc.value.message and exc.value.hint

    monkeypatch.delenv("CREDWARDEN_PASSPHRASE")
    with pytest.raises(MasterKeyError) as exc:
        Warden.init()
    assert "CREDWARDEN_PASSPHRASE" in (exc.value.hint or "")

    phrase = "correct horse battery staple"
    monkeypatch.setenv("CREDWARDEN_PASSPHRASE", phrase)
    w, report = Warden.init()
    with w:
        w.add(A, "secret", {"value": "by passphrase"})
    assert report.created and "passphrase" in report.key_source
    assert not (home / "master.key").exists()
    url = f"sqlite:///{home / 'credwarden.db'}"
    with raw(url) as db:
        ((kdf,),) = db.execute("SELECT body FROM records WHERE ns = 'meta' AND key = 'kdf'")
    params = json.loads(kdf)
    assert params["alg"] == "argon2id" and params["m"] == 1024 and params["t"] == 1
    assert phrase.encode() not in Path(home / "credwarden.db").read_bytes()

    with Warden.open() as w:
        assert w.get(A).reveal() == "by passphrase"
    w, again = Warden.init()
    with w:
        assert not again.created
    monkeypatch.delenv("CREDWARDEN_PASSPHRASE")
    asked: list[tuple[str, bool]] = []

    def prompt(label: str, confirm: bool) -> str:
        asked.append((label, confirm))
        return phrase

    with Warden.open(prompt=prompt) as w:
        assert w.get(A).reveal() == "by passphrase"
    assert asked and asked[0][1] is False

    before = snapshot(url)
    monkeypatch.setenv("CREDWARDEN_PASSPHRASE", "correct horse battery stapler")
    with pytest.raises(MasterKeyError) as exc:
        Warden.open()
    assert "passphrase" in exc.value.message and "does not open" in exc.value.message
    assert exc.value.exit_code == 3
    assert "stapler" not in exc.value.message
    assert snapshot(url) == before

    # Without the source named, the store's key is looked for in the (absent) key file.
    monkeypatch.delenv("CREDWARDEN_MASTER_KEY_SOURCE")
    with pytest.raises(MasterKeyError):
        Warden.open()


def test_unknown_source_lists_the_known_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDWARDEN_MASTER_KEY_SOURCE", "nosuch-kms")
    with pytest.raises(MasterKeyError) as exc:
        Warden.init()
    assert "nosuch-kms" in exc.value.message
    for name in ("env", "file", "keyring", "passphrase"):
        assert name in (exc.value.hint or "")
    assert exc.value.exit_code == 3


PLUGIN = '''
import hashlib

from credwarden.crypto.master import MasterKeySource


class MyPlug(MasterKeySource):
    """A stand-in for a KMS: the key comes from somewhere that is not this machine's disk."""

    name = "myplug"

    def load(self, ctx):
        return hashlib.sha256(b"myplug test key").digest()

    def describe(self, ctx):
        return "myplug KMS"


class NotASource:
    pass
'''

PLUGIN_RUN = """
import os
from credwarden import MasterKeyError, Warden

w, report = Warden.init()
with w:
    w.add("prod/stripe/billing", "secret", {"value": "via plug-in"})
print("source:", report.key_source)
with Warden.open() as w:
    print("value:", w.get("prod/stripe/billing").reveal())
print("key file:", os.path.exists(os.path.join(os.environ["CREDWARDEN_HOME"], "master.key")))
os.environ["CREDWARDEN_MASTER_KEY_SOURCE"] = "notakey"
try:
    Warden.open()
except MasterKeyError as exc:
    print("notakey:", exc.message)
"""


def test_master_key_source_plugin(tmp_path: Path, home: Path) -> None:
    site = tmp_path / "site"
    (site / "myplug-0.1.dist-info").mkdir(parents=True)
    (site / "myplug.py").write_text(PLUGIN)
    (site / "myplug-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: myplug\nVersion: 0.1\n"
    )
    (site / "myplug-0.1.dist-info" / "entry_points.txt").write_text(
        "[credwarden.master_key_sources]\nmyplug = myplug:MyPlug\nnotakey = myplug:NotASource\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "CREDWARDEN_HOME": str(home),
        "CREDWARDEN_MASTER_KEY_SOURCE": "myplug",
    }
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PLUGIN_RUN)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "source: myplug KMS" in lines
    assert "value: via plug-in" in lines
    assert "key file: False" in lines
    assert any(
        line.startswith("notakey:") and "not a MasterKeySource subclass" in line for line in lines
    ), lines


# -- envelope encryption -------------------------------------------------------------------------


def test_ciphertext_moved_between_credentials_does_not_decrypt(
    warden: Warden, database_url: str, open_warden: Callable[..., Warden]
) -> None:
    """Each check reads through a Warden that has not seen the record yet (a Warden may keep
    the versions it decrypted: they never change)."""
    a = warden.add(A, "api_key", {"api_key": "key-of-a"})
    a2 = warden.add("prod/other/key", "api_key", {"api_key": "key-of-a2"})
    b = warden.add(B, "basic", {"username": "u", "password": "password-of-b"})
    c = warden.add("prod/app/env", "env", {"ONE": "first", "TWO": "second"})
    ka, ka2, kb, kc = (ver_key(x.id, 1) for x in (a, a2, b, c))
    body_a, body_a2, body_b, body_c = (get_ver(database_url, k) for k in (ka, ka2, kb, kc))

    # Whole version records swapped between two credentials of one kind.
    put_ver(database_url, ka, body_a2)
    put_ver(database_url, ka2, body_a)
    for ref in (A, "prod/other/key", f"{A}#api_key"):
        with pytest.raises(CryptoError) as exc:
            open_warden().get(ref)
        assert "altered or moved" in exc.value.message and exc.value.hint
    for op in ("read", "headers"):
        with pytest.raises(CryptoError):
            getattr(open_warden(), op)(A)
    with pytest.raises(CryptoError):
        open_warden().env_vars(env="prod")
    put_ver(database_url, ka, body_a)
    put_ver(database_url, ka2, body_a2)
    assert warden.get(A).reveal() == "key-of-a"

    # Between credentials of different kinds: still no value comes out.
    put_ver(database_url, ka, body_b)
    put_ver(database_url, kb, body_a)
    for ref in (A, B, f"{B}#password", f"{A}#password"):
        with pytest.raises(CredwardenError):
            open_warden().get(ref)
    put_ver(database_url, ka, body_a)
    put_ver(database_url, kb, body_b)

    # One field's ciphertext copied into another credential (its own data key kept).
    ver_a, ver_b = json.loads(body_a), json.loads(body_b)
    ver_b["secret"]["password"] = ver_a["secret"]["api_key"]
    put_ver(database_url, kb, json.dumps(ver_b).encode())
    with pytest.raises(CryptoError):
        open_warden().get(B)
    put_ver(database_url, kb, body_b)

    # Two fields of one version swapped.
    ver_c = json.loads(body_c)
    ver_c["secret"]["ONE"], ver_c["secret"]["TWO"] = ver_c["secret"]["TWO"], ver_c["secret"]["ONE"]
    put_ver(database_url, kc, json.dumps(ver_c).encode())
    with pytest.raises(CryptoError):
        open_warden().get("prod/app/env#ONE")

    # A flipped bit in a ciphertext.
    put_ver(database_url, kc, body_c)
    ver_c = json.loads(body_c)
    blob = bytearray(base64.b64decode(ver_c["secret"]["ONE"]))
    blob[-1] ^= 1
    ver_c["secret"]["ONE"] = base64.b64encode(bytes(blob)).decode()
    put_ver(database_url, kc, json.dumps(ver_c).encode())
    with pytest.raises(CryptoError):
        open_warden().get("prod/app/env#ONE")
    put_ver(database_url, kc, body_c)
    assert open_warden().get("prod/app/env#ONE").reveal() == "first"


def test_old_version_copied_over_current_does_not_decrypt(
    warden: Warden, database_url: str, open_warden: Callable[..., Warden]
) -> None:
    info = warden.add(A, "secret", {"value": "old-revoked"})
    warden.update(A, fields={"value": "current"})
    put_ver(database_url, ver_key(info.id, 2), get_ver(database_url, ver_key(info.id, 1)))
    try:
        value = open_warden().get(A).reveal()
    except (CryptoError, StoreCorrupt):  # refused by the AEAD, or already by the row decoder
        return
    assert value != "old-revoked", "a replayed old version was returned as current"


def _terms(url: str) -> dict[str, int]:
    return {k: Keyring.term_of(base64.b64decode(str(v["dek"]))) for k, v in ver_rows(url).items()}


def test_rotate_key_rewraps_every_data_key(
    warden: Warden, database_url: str, open_warden: Callable[..., Warden]
) -> None:
    warden.add(A, "api_key", {"api_key": "k1"})
    warden.update(A, fields={"api_key": "k2"})
    warden.add(B, "basic", {"username": "u", "password": "p"})
    warden.add("prod/app/env", "env", {"ONE": "1", "TWO": "2"})
    early = open_warden()  # opened before the rotation: knows only term 1
    assert early.get(A).reveal() == "k2"
    n = len(ver_rows(database_url))
    assert set(_terms(database_url).values()) == {1}
    deks_before = {k: v["dek"] for k, v in ver_rows(database_url).items()}
    secrets_before = {k: v["secret"] for k, v in ver_rows(database_url).items()}

    progress: list[tuple[int, int]] = []
    result = warden.rotate_key(progress=lambda done, total: progress.append((done, total)), batch=2)
    assert result == {"term": 2, "rewrapped": n}
    assert progress[-1] == (n, n) and len(progress) == (n + 1) // 2
    assert set(_terms(database_url).values()) == {2}
    after = ver_rows(database_url)
    assert all(after[k]["dek"] != deks_before[k] for k in after)
    assert {k: v["secret"] for k, v in after.items()} == secrets_before  # values not re-entered
    with raw(database_url) as db:
        assert [
            k for (k,) in db.execute("SELECT key FROM records WHERE ns = 'kek' ORDER BY key")
        ] == [
            f"{1:08d}",
            f"{2:08d}",
        ]

    for w in (warden, early, open_warden()):
        assert w.get(A).reveal() == "k2"
        assert w.get(f"{B}#password").reveal() == "p"
        assert w.read("prod/app/env").reveal() == {"ONE": "1", "TWO": "2"}
        assert [h.version for h in w.history(A)] == [2, 1]
    assert warden.rollback(A, 1).version == 3
    assert early.get(A).reveal() == "k1"

    # Written after the rotation: under the new term; a second rotation moves everything on.
    warden.add("prod/new/one", "secret", {"value": "n"})
    assert max(_terms(database_url).values()) == 2
    assert warden.rotate_key()["term"] == 3
    assert set(_terms(database_url).values()) == {3}
    assert early.get("prod/new/one").reveal() == "n"
    assert warden.verify_audit().ok


def test_writer_opened_before_rotation_uses_the_new_term(
    warden: Warden, database_url: str, open_warden: Callable[..., Warden]
) -> None:
    warden.add(A, "secret", {"value": "v"})
    stale = open_warden()
    warden.rotate_key()
    info = stale.add(B, "secret", {"value": "written by the stale process"})
    assert warden.get(B).reveal() == "written by the stale process"
    assert _terms(database_url)[ver_key(info.id, 1)] == 2


def test_rotation_changes_no_credential_metadata(warden: Warden, database_url: str) -> None:
    warden.add(A, "secret", {"value": "v"}, description="d", tags={"team": "x"})
    with raw(database_url) as db:
        creds = db.execute("SELECT key, rev, body FROM records WHERE ns = 'cred' ORDER BY key")
    warden.rotate_key()
    with raw(database_url) as db:
        assert (
            db.execute("SELECT key, rev, body FROM records WHERE ns = 'cred' ORDER BY key") == creds
        )
    assert len(durable_records(database_url)) > len(creds)
