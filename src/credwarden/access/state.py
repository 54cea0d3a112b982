"""What every node keeps in memory of principals, tokens and grants, and when it reloads it.

Access is checked on every request, so it is answered from memory. Every change
bumps one generation counter in the store (in the change's own transaction); a
node re-reads the counter at most once per `ttl` seconds and reloads on a change.
A change made through this node applies at once; one made elsewhere (another
node, the local CLI) within `ttl` seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final, NamedTuple

from ..model import NS_META, dumps, store_info
from ..store import Record, Store, Tx, rows
from .grants import Grant, GrantIndex, grant_from_record
from .records import (
    ACCESS_GEN,
    GEN_SHAPE,
    NS_APITOKEN,
    NS_GRANT,
    NS_PRINCIPAL,
    PrincipalRecord,
    TokenRecord,
)

DEFAULT_PROTECTED: Final = ("prod",)
DEFAULT_TTL: Final = 1.0


class AccessState(NamedTuple):
    gen: int
    principals: dict[str, PrincipalRecord]
    tokens: dict[str, TokenRecord]
    grants: list[Grant]
    protected: frozenset[str]
    grants_index: GrantIndex


def protected_of(store_info: dict[str, object]) -> frozenset[str]:
    """The protected environments named in the store's metadata (prod by default)."""
    value = store_info.get("protected", list(DEFAULT_PROTECTED))
    return frozenset(value if isinstance(value, list) else DEFAULT_PROTECTED)


def _gen(rec: Record | None) -> int:
    if rec is None:
        return 0
    gen: int = GEN_SHAPE.decode(rec.body, rows.record_name(NS_META, ACCESS_GEN))["gen"]
    return gen


def read_gen(tx: Tx) -> int:
    return _gen(tx.get(NS_META, ACCESS_GEN))


def bump_gen(tx: Tx) -> int:
    """Mark a change of access (in the changing transaction): every node reloads."""
    rec = tx.get(NS_META, ACCESS_GEN)
    gen = _gen(rec) + 1
    tx.put(NS_META, ACCESS_GEN, dumps({"gen": gen}), rev=rec.rev if rec is not None else 0)
    return gen


def load_state(tx: Tx) -> AccessState:
    gen = read_gen(tx)
    info = tx.get(NS_META, "store")
    protected = protected_of(store_info(info.body) if info is not None else {})
    principals = {r.key: PrincipalRecord.from_record(r) for r in tx.list(NS_PRINCIPAL)}
    tokens = {r.key: TokenRecord.from_record(r) for r in tx.list(NS_APITOKEN)}
    grants = [grant_from_record(r) for r in tx.list(NS_GRANT)]
    return AccessState(gen, principals, tokens, grants, protected, GrantIndex(grants, protected))


class AccessCache:
    """The current AccessState of one store, re-checked at most every `ttl` seconds."""

    def __init__(self, store: Store, ttl: float = DEFAULT_TTL) -> None:
        self._store = store
        self.ttl = ttl
        self._state: AccessState | None = None
        self._checked = 0.0
        self._lock = threading.Lock()
        self._pinned = threading.local()

    def current(self) -> AccessState:
        pinned: AccessState | None = getattr(self._pinned, "state", None)
        if pinned is not None:
            return pinned
        state = self._state
        if state is not None and time.monotonic() - self._checked < self.ttl:
            return state
        with self._lock:
            if self._state is not None and time.monotonic() - self._checked < self.ttl:
                return self._state
            with self._store.transaction(write=False) as tx:
                gen = read_gen(tx)
                if self._state is None or gen != self._state.gen:
                    self._state = load_state(tx)
            self._checked = time.monotonic()
            return self._state

    def peek(self) -> AccessState | None:
        """The state held in memory while it needs no re-check (else None): never reads."""
        pinned: AccessState | None = getattr(self._pinned, "state", None)
        if pinned is not None:
            return pinned
        state = self._state
        if state is not None and time.monotonic() - self._checked < self.ttl:
            return state
        return None

    @contextmanager
    def pinned(self) -> Iterator[AccessState]:
        """Hold the current state for this thread while the block runs (checks made inside a
        store transaction must not open another one to reload)."""
        state = self.current()
        outer = getattr(self._pinned, "state", None)
        self._pinned.state = state
        try:
            yield state
        finally:
            self._pinned.state = outer

    def invalidate(self) -> None:
        """After a change made here: the next check reloads."""
        self._checked = 0.0

    def token(self, token_id: str) -> TokenRecord | None:
        """A token record: from memory, or (made elsewhere since the last load) the store."""
        rec = self.current().tokens.get(token_id)
        if rec is None:
            with self._store.transaction(write=False) as tx:
                row = tx.get(NS_APITOKEN, token_id)
            if row is not None:
                self.invalidate()
                rec = TokenRecord.from_record(row)
        return rec
