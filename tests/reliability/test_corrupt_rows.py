"""Malformed bodies written into rows of every kind the populated store holds, on SQLite and
on PostgreSQL: every command answers correctly or with one clean error; nothing crashes and
no wrong secret value is printed. Then the messages themselves, for the cases users meet."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.rawdb import raw

from .corruption import Store, Tally, judge, populate, restored

HEAD = 1 << 62

# Bodies that are not JSON, not UTF-8, JSON of the wrong shape, or a NaN/infinity.
GARBAGE: tuple[bytes, ...] = (
    b"{not json",
    b"\xff\x00\xfe",
    b"{}",
    b"[]",
    b"null",
    b'{"wrapped":"AAAA"}',
    b"1e999",
    b'{"a": NaN}',
    b"[" * 100_000,
)


def _variants(body: bytes) -> Iterator[bytes]:
    """Garbage, then the real record with one key missing and with each value retyped."""
    yield from GARBAGE
    try:
        doc = json.loads(body)
    except ValueError:
        return
    if not isinstance(doc, dict):
        return
    for i, name in enumerate(sorted(doc)):
        if i == 0:
            yield json.dumps({k: v for k, v in doc.items() if k != name}).encode()
        wrong: object = [] if isinstance(doc[name], str | int | None) else "x"
        yield json.dumps({**doc, name: wrong}).encode()
        if isinstance(doc[name], int) and not isinstance(doc[name], bool):
            yield json.dumps({**doc, name: 10**30}).encode()


@pytest.fixture
def populated(database_url: str, tmp_path: Path) -> Store:
    return populate(tmp_path / "home", database_url)


def test_malformed_record_bodies_get_clean_answers(populated: Store) -> None:
    tally = Tally()
    with raw(populated.url) as db:
        rows = db.execute("SELECT ns, key, body FROM records ORDER BY ns, key")
    assert {ns for ns, _, _ in rows} >= {"cred", "ver", "kek", "meta", "principal", "apitoken",
                                          "grant", "usage"}  # fmt: skip
    for ns, key, body in rows:
        for bad in _variants(bytes(body)):
            with restored(populated):
                with raw(populated.url) as db:
                    db.execute(
                        "UPDATE records SET body = ? WHERE ns = ? AND key = ?", (bad, ns, key)
                    )
                judge(populated, tally, f"{ns}/{key} = {bad[:24]!r}", rest=False)
    print(tally.line(f"malformed record bodies ({populated.url.split(':')[0]})"))
    assert not tally.tracebacks, "\n".join(tally.tracebacks[:5])
    assert not tally.wrong_values, "\n".join(tally.wrong_values[:5])


def test_malformed_audit_rows_get_clean_answers(populated: Store) -> None:
    tally = Tally()
    with raw(populated.url) as db:
        seqs = [r[0] for r in db.execute("SELECT seq FROM audit_events ORDER BY seq")]
    picks = [seqs[0], seqs[len(seqs) // 2], seqs[-2], HEAD]
    bodies = ["{", "garbage", "[]", '{"seq": 2}', "99999999999999999999999 x", ""]
    for seq in picks:
        for bad in bodies:
            with restored(populated):
                with raw(populated.url) as db:
                    db.execute("UPDATE audit_events SET body = ? WHERE seq = ?", (bad, seq))
                judge(populated, tally, f"event {seq} = {bad!r}", rest=False)
                r = populated.cli("audit", "verify")
                assert r.exit_code == 1 and "TAMPERED" in r.stdout, (seq, bad, r.output)
    print(tally.line(f"malformed audit rows ({populated.url.split(':')[0]})"))
    assert not tally.tracebacks, "\n".join(tally.tracebacks[:5])
    assert not tally.wrong_values, "\n".join(tally.wrong_values[:5])


def test_sqlite_column_types_are_checked(tmp_path: Path) -> None:
    """SQLite keeps whatever it is given: a text revision, an integer body, a blob key."""
    s = populate(tmp_path / "home", f"sqlite:///{tmp_path / 'cw.db'}")
    tally = Tally()
    for sql in (
        "UPDATE records SET rev = 'x' WHERE ns = 'cred'",
        "UPDATE records SET body = 12 WHERE ns = 'cred'",
        "UPDATE records SET body = 1.5 WHERE ns = 'kek'",
        "UPDATE records SET key = CAST(x'ff00' AS BLOB) WHERE ns = 'cred' AND key = 'dev/app/f2'",
        "UPDATE records SET key = CAST(x'ff00' AS TEXT) WHERE ns = 'grant'",
        "UPDATE audit_events SET body = x'ff00' WHERE seq = 2",
        "UPDATE audit_events SET hash = 7 WHERE seq = 3",
        f"UPDATE audit_events SET body = 5 WHERE seq = {HEAD}",
        "INSERT INTO credwarden_schema VALUES (99, 'from the future', 'x')",
    ):
        with restored(s):
            with raw(s.url) as db:
                db.execute(sql)
            judge(s, tally, sql)
    print(tally.line("SQLite column types"))
    assert not tally.tracebacks, "\n".join(tally.tracebacks[:5])
    assert not tally.wrong_values, "\n".join(tally.wrong_values[:5])


# -- what users read ---------------------------------------------------------------------------


def _set(s: Store, sql: str, *params: object) -> None:
    with raw(s.url) as db:
        db.execute(sql, params)


def test_a_corrupt_credential_is_named_and_list_shows_the_others(populated: Store) -> None:
    _set(populated, "UPDATE records SET body = ? WHERE ns = 'cred' AND key = 'dev/app/f2'",
         b"{not json")  # fmt: skip
    r = populated.cli("get", "dev/app/f2#password")
    assert r.exit_code == 1
    assert r.stderr.splitlines()[0] == (
        "error: the stored credential record 'dev/app/f2' is corrupt (its body is not valid JSON)"
    )
    assert "audit verify" in r.stderr and "backup" in r.stderr
    r = populated.cli("list")
    assert r.exit_code == 0
    assert "dev/app/f1" in r.stdout and "corrupt" in r.stdout
    assert "the stored record of dev/app/f2 is corrupt" in r.stderr
    r = populated.cli("list", "--json")
    health = {i["address"]: i["health"] for i in json.loads(r.stdout)}
    assert health == {"dev/app/f1": "ok", "dev/app/f2": "corrupt"}
    r = populated.cli("list", "--health", "corrupt", "--json")
    assert [i["address"] for i in json.loads(r.stdout)] == ["dev/app/f2"]
    assert populated.cli("get", "dev/app/f1").stdout == "fuzz-SECRET-three\n"


def test_a_corrupt_version_kek_or_event_is_named(populated: Store) -> None:
    with restored(populated):
        _set(populated, "UPDATE records SET body = ? WHERE ns = 'kek'", b'{"wrapped":"AAAA"}')
        r = populated.cli("get", "dev/app/f1")
        assert r.exit_code == 1
        assert "key-encryption key record '00000001' is corrupt" in r.stderr
    with restored(populated):
        _set(populated, "UPDATE records SET body = ? WHERE ns = 'ver'", b"[]")
        r = populated.cli("history", "dev/app/f1")
        assert r.exit_code == 1 and "credential version record" in r.stderr
    with restored(populated):
        _set(populated, "UPDATE audit_events SET body = '{' WHERE seq = 3")
        r = populated.cli("audit", "--json")
        assert r.exit_code == 0
        assert "audit event 3 is corrupt" in r.stderr
        events = json.loads(r.stdout)
        assert [e["result"] for e in events if e["seq"] == 3] == ["unreadable"]
        r = populated.cli("audit", "verify")
        assert (r.exit_code, r.stdout.startswith("audit log TAMPERED: first bad event 3")) == (
            1,
            True,
        )
    with restored(populated):
        _set(populated, f"UPDATE audit_events SET body = 'garbage' WHERE seq = {HEAD}")
        r = populated.cli("audit", "verify")
        assert r.exit_code == 1
        assert r.stdout.startswith("audit log TAMPERED: the head record: the audit head record")
        r = populated.cli("get", "dev/app/f1")  # a read that cannot be audited is refused
        assert r.exit_code == 8 and "audit head record is corrupt" in r.stderr
        assert r.stdout == ""


def test_a_rest_read_over_a_corrupt_row_is_a_json_500(populated: Store) -> None:
    from starlette.testclient import TestClient

    from credwarden import Warden
    from credwarden.api.server import build

    _set(populated, "UPDATE records SET body = ? WHERE ns = 'cred' AND key = 'dev/app/f1'",
         b"\xff\x00")  # fmt: skip
    w = Warden.open_local(database_url=populated.url, home=str(populated.home))
    try:
        with TestClient(build(w), raise_server_exceptions=False) as c:
            for path in ("/v1/credentials/dev/app/f1/value", "/v1/credentials/dev/app/f1"):
                resp = c.get(path, headers={"Authorization": f"Bearer {populated.token}"})
                assert resp.status_code == 500, resp.text
                body = resp.json()
                assert body["code"] == "store_corrupt"
                assert body["message"] == (
                    "the stored credential record 'dev/app/f1' is corrupt (its body is not UTF-8)"
                )
            listed = c.get(
                "/v1/credentials", headers={"Authorization": f"Bearer {populated.token}"}
            )
            assert listed.status_code == 200
            assert {i["address"]: i["health"] for i in listed.json()} == {
                "dev/app/f1": "corrupt",
                "dev/app/f2": "ok",
            }
    finally:
        w.close()
