"""The storage contract: four record methods with compare-and-set, and an append-only audit log.

The store is untrusted: it only ever holds ciphertext for secret material.
Everything above it (keys, credentials, versions) is a record `(ns, key, rev,
body)`; `rev` is the compare-and-set token. Every backend passes the one
conformance suite in tests/store/.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import NamedTuple

AUDIT_HEAD_SEQ = 1 << 62
"""The head (last seq and hash, MAC'd) is a row of audit_events at this seq, so it sits in the
same b-tree leaf as the newest events: one page written per audited read instead of two."""


def encode_head(head: AuditHead) -> tuple[str, str]:
    """The head row's (body, hash) columns."""
    return f"{head.seq} {head.hash}", head.mac


def decode_head(body: object, mac: object) -> AuditHead:
    """The head row's columns as written by `encode_head` (StoreCorrupt otherwise)."""
    from . import rows

    seq, _, hash_ = body.partition(" ") if isinstance(body, str) else ("", "", "")
    if not (seq.isascii() and seq.isdigit() and len(seq) <= 18 and hash_):
        raise rows.corrupt("the audit head record", "it is not a sequence number and a hash")
    if not isinstance(mac, str):
        raise rows.corrupt("the audit head record", "its MAC is not text")
    return AuditHead(int(seq), hash_, mac)  # whether they are right is the chain's to say


class Record(NamedTuple):
    key: str
    rev: int
    body: bytes


class AuditRow(NamedTuple):
    """One stored audit event: its position, canonical JSON body and chain hash (kept small:
    every audited read writes one)."""

    seq: int
    body: str
    hash: str


class AuditHead(NamedTuple):
    seq: int
    hash: str
    mac: str


_list = list  # `list` is shadowed by a method name below


class Tx(ABC):
    """One transaction. Leaving the `with` block commits; an exception rolls back."""

    @abstractmethod
    def get(self, ns: str, key: str) -> Record | None:
        """The record, or None."""

    def get_many(self, ns: str, keys: Sequence[str]) -> dict[str, Record]:
        """The records that exist among `keys` (a backend may do it in one statement)."""
        return {k: r for k in keys if (r := self.get(ns, k)) is not None}

    @abstractmethod
    def put(self, ns: str, key: str, body: bytes, *, rev: int) -> int:
        """Write if the current rev is `rev` (0: must not exist); return the new rev.

        Raises Conflict (or AlreadyExists for rev 0) when someone changed it first.
        """

    @abstractmethod
    def delete(self, ns: str, key: str, *, rev: int) -> None:
        """Delete if the current rev is `rev`; Conflict otherwise."""

    @abstractmethod
    def list(self, ns: str, prefix: str = "") -> _list[Record]:
        """Records whose key starts with `prefix`, ordered by key."""

    @abstractmethod
    def audit_head(self) -> AuditHead | None:
        """The last event's seq and hash (the row at AUDIT_HEAD_SEQ), locked until the
        transaction ends."""

    @abstractmethod
    def audit_append(self, rows: Sequence[AuditRow], head: AuditHead) -> None:
        """Append events (consecutive seqs) and move the head to the last, in this transaction."""

    @abstractmethod
    def audit_scan(
        self,
        *,
        after_seq: int = 0,
        address: str | None = None,
        principal: str | None = None,
        since: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> Iterator[AuditRow]:
        """Events in seq order (or reversed), the head row excluded, filtered on the body's
        `address`, `principal` and `ts` (>= since)."""


class Store(ABC):
    """A database holding records and the audit log."""

    dialect: str
    url: str

    @abstractmethod
    def transaction(self, *, write: bool = True) -> AbstractContextManager[Tx]:
        """A transaction; write ones are serialized with other writers where the backend must."""

    def statements(self) -> AbstractContextManager[Tx]:
        """Reads outside an explicit transaction, each statement seeing the latest commit: for a
        hot read of one record whose dependents are immutable. By default a read transaction."""
        return self.transaction(write=False)

    @abstractmethod
    def lock(self, name: str, *, timeout: float) -> AbstractContextManager[None]:
        """An exclusive lock across threads, processes and nodes sharing this store, held until
        the block ends or the holder dies -- it never expires under a live holder. Raises
        LockTimeout when it cannot be had within `timeout` seconds."""

    @abstractmethod
    def schema_version(self) -> int:
        """The applied migration number."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""
