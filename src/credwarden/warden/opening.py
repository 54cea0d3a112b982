"""Opening a store (the master key from its source, the KEKs and the audit key unwrapped)
and creating one (`credwarden init`): idempotent, never overwriting an existing key."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from ..access.policy import GrantPolicy, Policy, local_principal
from ..access.state import AccessCache
from ..audit.chain import AuditChain
from ..crypto.barrier import Barrier, audit_aad, b64d, decode_keks, kek_body, term_key
from ..crypto.envelope import new_key, wrap_with_master
from ..crypto.master import KeyContext, MasterKeySource, select_source
from ..errors import StoreError, UsageError
from ..model import NS_KEK, NS_META, WRAPPED_SHAPE, b64e, dumps, store_info
from ..operation import Principal
from ..settings import DEFAULT_ENVIRONMENTS, Settings, redact_url
from ..store import Store, open_store, rows
from ..timeutil import iso, utcnow
from .checks import check_env_name

if TYPE_CHECKING:
    from . import Warden


class InitReport(NamedTuple):
    created: bool
    home: str
    database: str
    key_source: str
    store_id: str

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


def open_local(
    cls: type[Warden],
    settings: Settings,
    source: str,
    prompt: Callable[[str, bool], str] | None,
    principal: Principal | None,
    policy: Policy | None,
) -> Warden:
    """The facade over the store `settings` name, with its master key loaded."""
    check_home(settings.home)
    store = open_store(settings.database_url, create=False)
    try:
        with store.transaction(write=False) as tx:
            meta = _meta(tx)
            keks = decode_keks(tx.list(NS_KEK)) if "store" in meta else []
        if "store" not in meta:
            raise StoreError(
                f"the database {store.url.split('://')[0]}://... holds no credwarden store",
                hint="run `credwarden init` first",
            )
        key_source = select_source(settings)
        ctx = KeyContext(settings, dict(meta), prompt)
        master = key_source.load(ctx)
        described = key_source.describe(ctx)
        return assemble(
            cls, store, meta, keks, master, settings, source, principal, policy, described
        )
    except BaseException:
        store.close()
        raise


def assemble(
    cls: type[Warden],
    store: Store,
    meta: dict[str, str],
    keks: list[dict[str, Any]],
    master: bytes,
    settings: Settings,
    source: str,
    principal: Principal | None,
    policy: Policy | None,
    described: str,
) -> Warden:
    info = store_info(meta["store"])
    store_id = info["store_id"]
    if policy is None:
        policy = GrantPolicy(AccessCache(store))
    barrier = Barrier(master, store_id, keks, described)
    where = rows.record_name(NS_META, "audit_key")
    if "audit_key" not in meta:
        raise rows.corrupt(where, "it is missing")
    wrapped = WRAPPED_SHAPE.decode(meta["audit_key"], where)["wrapped"]
    audit_key = barrier.unwrap_with_master(
        b64d(wrapped, "the stored audit key"), audit_aad(store_id), "the stored audit key"
    )
    return cls(
        store=store,
        barrier=barrier,
        chain=AuditChain(audit_key),
        environments=info.get("environments", DEFAULT_ENVIRONMENTS),
        settings=settings,
        principal=principal or local_principal(),
        policy=policy,
        source=source,
    )


def init_store(
    cls: type[Warden],
    settings: Settings,
    source: str,
    prompt: Callable[[str, bool], str] | None,
    environments: Sequence[str] | None,
) -> tuple[Warden, InitReport]:
    """Create the store and its keys; on an initialised store, check the key and return."""
    envs = list(environments or DEFAULT_ENVIRONMENTS)
    for e in envs:
        check_env_name(e)
    check_home(settings.home)
    try:
        os.makedirs(settings.home, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"cannot create CREDWARDEN_HOME {settings.home} ({exc.strerror})",
            hint="choose a folder you can write to",
        ) from None
    store = open_store(settings.database_url, create=True)
    key_source = select_source(settings)
    try:
        with store.transaction() as tx:
            meta = _meta(tx)
            ctx = KeyContext(settings, dict(meta), prompt)
            described = key_source.describe(ctx)
            created = "store" not in meta
            if created:
                master = _obtain_master(key_source, ctx)
                _create(tx, ctx, meta, master, envs)
                meta = _meta(tx)
            else:
                master = key_source.load(ctx)
            keks = decode_keks(tx.list(NS_KEK))
            warden = assemble(
                cls, store, meta, keks, master, settings, source, None, None, described
            )
            warden._chain.append(
                tx,
                principal=warden.principal.name,
                action="init",
                address=None,
                result="ok",
                source=source,
                detail={"created": created, "key_source": described},
            )
    except BaseException:
        store.close()
        raise
    report = InitReport(
        created, settings.home, redact_url(settings.database_url), described, warden.store_id
    )
    return warden, report


def check_home(home: str) -> None:
    """CREDWARDEN_HOME must be a folder (or not exist yet, for `init`)."""
    if os.path.exists(home) and not os.path.isdir(home):
        raise UsageError(
            f"CREDWARDEN_HOME {home} is not a directory",
            hint="point CREDWARDEN_HOME at a folder (`credwarden init` creates it)",
        )


def _meta(tx: Any) -> dict[str, str]:
    """The store's NS_META records as text (their shapes are checked where they are read)."""
    return {r.key: rows.text(r.body, rows.record_name(NS_META, r.key)) for r in tx.list(NS_META)}


def _create(tx: Any, ctx: KeyContext, meta: dict[str, str], master: bytes, envs: list[str]) -> None:
    """A new store's records: key-source metadata, the store's identity, its audit key and
    its first KEK term."""
    store_id = os.urandom(16).hex()
    now = iso(utcnow())
    for k, v in ctx.meta.items():
        if k not in meta:
            tx.put(NS_META, k, v.encode(), rev=0)
    info = {"store_id": store_id, "created_at": now, "environments": envs, "format": 1}
    tx.put(NS_META, "store", dumps(info), rev=0)
    audit_key = {"wrapped": b64e(wrap_with_master(master, new_key(), audit_aad(store_id)))}
    tx.put(NS_META, "audit_key", dumps(audit_key), rev=0)
    tx.put(NS_KEK, term_key(1), kek_body(master, store_id, 1, new_key()), rev=0)


def _obtain_master(source: MasterKeySource, ctx: KeyContext) -> bytes:
    if source.exists(ctx):
        return source.load(ctx)
    try:
        return source.create(ctx)
    except FileExistsError:  # another init made the key file meanwhile
        return source.load(ctx)


__all__ = ["InitReport", "assemble", "init_store", "open_local"]
