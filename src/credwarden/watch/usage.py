"""Last use and read counts per address, folded incrementally from the audit log.

The read path only appends to the log; keeping a secondary index or a usage row
up to date on every read would cost each read another written page. Instead the
events after a stored cursor are folded into `usage` records when someone asks.
"""

from __future__ import annotations

from typing import Any

from ..errors import Conflict, StoreCorrupt
from ..model import NS_META, dumps
from ..store import Record, Store, Tx, rows
from ..store.rows import COUNT, STR, TIME

NS_USAGE = "usage"
_CURSOR = "usage_cursor"
_USE_ACTIONS = frozenset({"read", "use"})
FOLD_BATCH = 50_000
CURSOR_SHAPE = rows.Shape("usage cursor", {"seq": COUNT})
USAGE_SHAPE = rows.Shape("usage record", {"last_used_at": STR, "reads": COUNT})


def fold(store: Store) -> None:
    """Fold new audit events into the usage records (one writer at a time; losers skip)."""
    while True:
        try:
            with store.transaction() as tx:
                if not _fold_batch(tx):
                    return
        except Conflict:
            return  # another process folded the same events meanwhile


def _fold_batch(tx: Tx) -> bool:
    """Fold up to FOLD_BATCH events; True when there may be more."""
    rec = tx.get(NS_META, _CURSOR)
    cursor = CURSOR_SHAPE.decode(rec.body, rows.record_name(NS_META, _CURSOR))["seq"] if rec else 0
    seen: dict[str, tuple[str, int]] = {}
    last = cursor
    for row in tx.audit_scan(after_seq=cursor, limit=FOLD_BATCH):
        last = row.seq
        try:  # only the four fields a use needs (this runs over every read's event)
            event = rows.document(row.body, "")
        except StoreCorrupt:
            continue  # counted nowhere; `audit verify` names it
        if type(event) is not dict:
            continue
        address, ts = event.get("address"), event.get("ts")
        if (
            type(address) is str
            and event.get("result") == "ok"
            and event.get("action") in _USE_ACTIONS
            and isinstance(ts, str)
            and TIME(ts)
        ):
            last_ts, n = seen.get(address, ("", 0))
            seen[address] = (max(last_ts, ts), n + 1)
    if last == cursor:
        return False
    for address, (ts, n) in seen.items():
        old = tx.get(NS_USAGE, address)
        prev = _usage(old) or {"last_used_at": "", "reads": 0}  # derived: a bad one is redone
        body = dumps(
            {"last_used_at": max(str(prev["last_used_at"]), ts), "reads": int(prev["reads"]) + n}
        )
        tx.put(NS_USAGE, address, body, rev=old.rev if old else 0)
    tx.put(NS_META, _CURSOR, dumps({"seq": last}), rev=rec.rev if rec else 0)
    return last - cursor >= FOLD_BATCH


def last_used(tx: Tx, addresses: list[str]) -> dict[str, str]:
    """The last successful read/use time of each address that has one (after `fold`)."""
    out = {}
    for address in addresses:
        use = _usage(tx.get(NS_USAGE, address))
        if use is not None and use["last_used_at"]:
            out[address] = use["last_used_at"]
    return out


def _usage(rec: Record | None) -> dict[str, Any] | None:
    """A usage record, or None when there is none or it does not decode (it is derived)."""
    if rec is None:
        return None
    try:
        return USAGE_SHAPE.decode(rec.body, rows.record_name(NS_USAGE, rec.key))
    except StoreCorrupt:
        return None
