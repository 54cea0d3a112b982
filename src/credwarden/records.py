"""Credential and version records: loading (with their caches), sealing new versions through
the barrier, and writing with compare-and-set. Used by the facade and the domain alike, so
that no module has to reach into another's private helpers.

Versions are immutable (a KEK rotation re-wraps the same data key), so a version and its
unwrapped data key are kept after first use: the read path then does one point read. The
last decoded metadata of each address is reused while its stored bytes are unchanged.
Both caches are bounded and dropped on close.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from typing import Protocol

from .crypto.barrier import Barrier, Cipher
from .errors import (
    AlreadyExists,
    Conflict,
    NotFound,
    StoreCorrupt,
    UnknownEnvironment,
)
from .model import (
    NS_CRED,
    NS_META,
    NS_VERSION,
    CredentialRecord,
    VersionRecord,
    store_info,
    version_key,
)
from .store import Store, Tx, rows
from .timeutil import iso, utcnow

CACHE_SIZE = 1024


class FieldKinds(Protocol):
    """What sealing needs to know of a credential kind: which fields are secret."""

    def is_secret(self, field: str) -> bool: ...


def changed_first(address: str) -> Conflict:
    return Conflict(
        f"{address} was changed by someone else first",
        hint="look at it again (`credwarden show`) and retry",
    )


class Records:
    """The credential records of one store, behind its barrier."""

    def __init__(self, store: Store, barrier: Barrier, environments: Iterable[str]) -> None:
        self.store = store
        self.barrier = barrier
        self.environments = builtins.list(environments)
        self._versions: dict[tuple[str, int], tuple[VersionRecord, Cipher]] = {}
        self._creds: dict[str, tuple[int, bytes, CredentialRecord]] = {}
        self._kinds: dict[str, str] = {}

    def close(self) -> None:
        self._versions.clear()
        self._creds.clear()
        self._kinds.clear()

    # -- reading -----------------------------------------------------------------------------

    def load(self, tx: Tx, address: str) -> CredentialRecord:
        """The credential at `address` (NotFound when there is none)."""
        rec = tx.get(NS_CRED, str(address))
        if rec is None:
            raise NotFound(
                f"no credential at {address}", hint="`credwarden list` shows what exists"
            )
        cached = self._creds.get(rec.key)
        if cached is not None and cached[0] == rec.rev and cached[1] == rec.body:
            return cached[2]
        cred = CredentialRecord.from_record(rec)
        if len(self._creds) >= CACHE_SIZE:
            self._creds.clear()
        self._creds[rec.key] = (rec.rev, rec.body, cred)
        return cred

    def find(self, tx: Tx, address: str) -> CredentialRecord | None:
        """The credential at `address`, or None."""
        try:
            return self.load(tx, address)
        except NotFound:
            return None

    def list(
        self,
        tx: Tx,
        prefix: str = "",
        corrupt: builtins.list[tuple[str, StoreCorrupt]] | None = None,
    ) -> builtins.list[CredentialRecord]:
        """Every credential whose address starts with `prefix`, by address. A record that does
        not decode raises StoreCorrupt, or, given `corrupt`, is left out and noted there."""
        out = []
        for r in tx.list(NS_CRED, prefix):
            try:
                out.append(CredentialRecord.from_record(r))
            except StoreCorrupt as exc:
                if corrupt is None:
                    raise
                corrupt.append((r.key, exc))
        return out

    def load_version(
        self, tx: Tx, cred: CredentialRecord, version: int | None = None
    ) -> VersionRecord:
        """A version of `cred` (its current one by default)."""
        v = cred.version if version is None else version
        cached = self._versions.get((cred.id, v))
        if cached is not None:
            return cached[0]
        rec = tx.get(NS_VERSION, version_key(cred.id, v))
        if rec is None:
            raise NotFound(
                f"{cred.address} has no version {v}",
                hint=f"`credwarden history {cred.address}` lists its versions",
            )
        ver = VersionRecord.from_record(rec)
        if ver.version != v:
            raise rows.corrupt(rows.record_name(NS_VERSION, rec.key), "it holds another version")
        return ver

    def versions(self, tx: Tx, cred: CredentialRecord) -> builtins.list[VersionRecord]:
        """Every stored version of `cred`, oldest first."""
        return [VersionRecord.from_record(r) for r in tx.list(NS_VERSION, cred.id + "/")]

    def kind_of(self, address: str) -> str | None:
        """A credential's kind (it never changes under an address while it exists), kept."""
        kind = self._kinds.get(address)
        if kind is None:
            with self.store.transaction(write=False) as tx:
                cred = self.find(tx, address)
            if cred is None:
                return None
            kind = self._kinds[address] = cred.kind
        return kind

    # -- opening values ------------------------------------------------------------------------

    def data_key(self, tx: Tx, cred_id: str, ver: VersionRecord) -> Cipher:
        """The version's data key, unwrapped once and then kept with the (immutable) version."""
        cached = self._versions.get((cred_id, ver.version))
        if cached is not None:
            return cached[1]
        dek = self.barrier.data_key(tx, cred_id, ver.version, ver.dek)
        if len(self._versions) >= CACHE_SIZE:
            del self._versions[next(iter(self._versions))]
        self._versions[(cred_id, ver.version)] = (ver, dek)
        return dek

    def decrypt(
        self, tx: Tx, cred: CredentialRecord, ver: VersionRecord, names: Iterable[str] | None = None
    ) -> dict[str, str]:
        """The named secret fields of a version (all of them by default), decrypted."""
        dek = self.data_key(tx, cred.id, ver)
        return self.barrier.open_fields(
            dek, cred.id, ver.version, ver.secret, ver.secret if names is None else names
        )

    def values(self, tx: Tx, cred: CredentialRecord, ver: VersionRecord) -> dict[str, str]:
        """Every field of a version, secrets decrypted."""
        return {**ver.plain, **self.decrypt(tx, cred, ver)}

    # -- writing -------------------------------------------------------------------------------

    def seal(
        self,
        tx: Tx,
        cred_id: str,
        version: int,
        kind: FieldKinds,
        fields: Mapping[str, str],
        note: str,
        *,
        by: str,
    ) -> VersionRecord:
        """A new version record of `fields`, secret ones sealed under a fresh data key."""
        dek, secret, plain = self.barrier.seal_fields(tx, cred_id, version, fields, kind.is_secret)
        return VersionRecord(version, iso(utcnow()), by, note, dek, secret, plain)

    def create(self, tx: Tx, cred: CredentialRecord, ver: VersionRecord) -> CredentialRecord:
        """Store a new credential with its first version; AlreadyExists when the address is
        taken."""
        try:
            rev = tx.put(NS_CRED, cred.address, cred.to_bytes(), rev=0)
        except AlreadyExists:
            raise AlreadyExists(
                f"{cred.address} already exists",
                hint="use `credwarden update` to change it, or `credwarden rm` first",
            ) from None
        tx.put(NS_VERSION, version_key(cred.id, ver.version), ver.to_bytes(), rev=0)
        return cred._replace(rev=rev)

    def put_version(self, tx: Tx, cred: CredentialRecord, ver: VersionRecord) -> None:
        """Store a new version; a racing writer that made the same version first wins."""
        try:
            tx.put(NS_VERSION, version_key(cred.id, ver.version), ver.to_bytes(), rev=0)
        except AlreadyExists:
            raise changed_first(cred.address) from None

    def put(self, tx: Tx, cred: CredentialRecord) -> CredentialRecord:
        """Write changed metadata (compare-and-set on the revision it was read at)."""
        try:
            rev = tx.put(NS_CRED, cred.address, cred.to_bytes(), rev=cred.rev)
        except Conflict:
            raise changed_first(cred.address) from None
        return cred._replace(rev=rev)

    def delete(self, tx: Tx, cred: CredentialRecord) -> None:
        """Delete a credential and its versions: without the data keys, nothing of the values
        can be recovered (crypto-shredding)."""
        for r in tx.list(NS_VERSION, cred.id + "/"):
            tx.delete(NS_VERSION, r.key, rev=r.rev)
        self._kinds.pop(cred.address, None)
        try:
            tx.delete(NS_CRED, cred.address, rev=cred.rev)
        except Conflict:
            raise changed_first(cred.address) from None

    def rewrap(self, tx: Tx, key: str, term: int) -> None:
        """Wrap one version's data key again under KEK `term` (if it is not already)."""
        rec = tx.get(NS_VERSION, key)
        if rec is None:
            return  # removed meanwhile
        ver = VersionRecord.from_record(rec)
        cred_id = key.partition("/")[0]
        if key != version_key(cred_id, ver.version):
            raise rows.corrupt(rows.record_name(NS_VERSION, key), "it holds another version")
        wrapped = self.barrier.rewrap(ver.dek, cred_id, ver.version, term)
        if wrapped is not None:
            tx.put(NS_VERSION, key, ver._replace(dek=wrapped).to_bytes(), rev=rec.rev)

    def version_keys(self) -> builtins.list[str]:
        """The record keys of every stored version (for re-wrapping)."""
        with self.store.transaction(write=False) as tx:
            return [r.key for r in tx.list(NS_VERSION)]

    # -- environments ----------------------------------------------------------------------------

    def check_env(self, env: str) -> None:
        """Refuse an environment the store does not have (re-reading the list once: another
        process may have added it since this one opened the store)."""
        if env not in self.environments:
            with self.store.transaction(write=False) as tx:
                rec = tx.get(NS_META, "store")
            if rec is not None:
                self.environments = store_info(rec.body).get("environments", [])
        if env not in self.environments:
            raise UnknownEnvironment(
                f"unknown environment {env!r} (known: {', '.join(self.environments)})",
                hint=f"add it with `credwarden environments add {env}`",
            )


def expect_version(cred: CredentialRecord, expected_version: int | None) -> None:
    """Refuse with Conflict unless `cred` is at `expected_version` (None: any)."""
    if expected_version is not None and cred.version != expected_version:
        raise Conflict(
            f"{cred.address} is at version {cred.version}, not {expected_version}:"
            " someone changed it first",
            hint="look at it again and retry",
        )


__all__ = ["CACHE_SIZE", "FieldKinds", "Records", "changed_first", "expect_version"]
