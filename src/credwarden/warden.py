"""The facade: every operation is authorize -> perform -> audit, here and nowhere else.

Interfaces (CLI, API, web) and the Python SDK reach the store only through
`Warden`. Each operation on a credential leaves exactly one audit event: in the
same transaction as a write, and before a read returns its value. A read whose
event cannot be written fails with AuditError.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, NamedTuple, TypeVar

from .access.grants import Grant
from .access.policy import GrantPolicy, Policy, Principal, local_principal
from .access.records import PrincipalRecord
from .access.state import AccessCache
from .address import Address, matches, parse_address, parse_ref
from .audit.chain import AuditChain, AuditEvent, VerifyReport
from .audit.group import GroupCommit
from .crypto.envelope import (
    Keyring,
    data_cipher,
    dek_aad,
    field_aad,
    kek_aad,
    new_key,
    open_field,
    seal_field,
    unwrap_with_master,
    wrap_with_master,
)
from .crypto.master import KeyContext, MasterKeySource, select_source
from .errors import (
    AlreadyExists,
    AuditError,
    Conflict,
    CredwardenError,
    CryptoError,
    NotFound,
    PermissionDenied,
    StoreError,
    Unauthenticated,
    ValidationError,
)
from .kinds import Kind, get_kind
from .lifecycle.health import compute_health
from .model import (
    NS_CRED,
    NS_KEK,
    NS_META,
    NS_TOKEN,
    NS_VERSION,
    Credential,
    CredentialInfo,
    CredentialRecord,
    VersionInfo,
    VersionRecord,
    b64d,
    b64e,
    dumps,
    version_key,
)
from .secret import Secret
from .settings import DEFAULT_ENVIRONMENTS, Settings, redact_url
from .store import Store, Tx, open_store
from .store.base import Record
from .timeutil import iso, parse_iso, utcnow
from .watch import usage

T = TypeVar("T")
_UNSET: Any = object()
MAX_TEXT = 2000
MAX_ROTATE_EVERY = 100 * 366 * 86400
READ_ACTIONS = frozenset({"read", "use", "describe", "list", "history", "audit.read"})
VERSION_CACHE = 1024
_TAG_KEY_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}\Z")
_SEGMENT_RE = re.compile(r"[a-z0-9][a-z0-9._-]*\Z")


def _audit_aad(store_id: str) -> bytes:
    return f"cw1|audit|{store_id}".encode()


class Caller(NamedTuple):
    """Who an operation is done for: the principal, the interface, and (over the API) where
    the request came from ({"ip", "user_agent", "token"})."""

    principal: Principal
    source: str
    client: dict[str, Any] | None = None


_CALLER: ContextVar[Caller | None] = ContextVar("credwarden_caller", default=None)


class _Op:
    """What an operation tells its audit event (never a secret value), and for whom it is done
    (captured where the operation starts: the event may be written by another thread)."""

    __slots__ = ("caller", "detail", "version")

    def __init__(self, version: int | None = None, detail: dict[str, Any] | None = None) -> None:
        self.version = version
        self.detail: dict[str, Any] = {} if detail is None else detail
        self.caller = _CALLER.get()


class InitReport(NamedTuple):
    created: bool
    home: str
    database: str
    key_source: str
    store_id: str

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


_list = list  # `list` is shadowed by a method name below


class Warden:
    """The one entry point to credentials: `Warden.open()` then `get`, `add`, `list`, ..."""

    def __init__(
        self,
        *,
        store: Store,
        keyring: Keyring,
        chain: AuditChain,
        master: bytes,
        store_id: str,
        environments: Sequence[str],
        settings: Settings,
        principal: Principal,
        policy: Policy,
        source: str,
        key_source: str,
    ) -> None:
        self._store = store
        self._keyring = keyring
        self._chain = chain
        self._master = master
        self.store_id = store_id
        self.environments = list(environments)
        self.settings = settings
        self._caller = Caller(principal, source)
        self._policy = policy
        self.key_source = key_source
        # Versions are immutable (a KEK rotation re-wraps the same data key), so a version
        # and its unwrapped data key are kept after first use: the read path then does one
        # point read. Bounded; dropped on close.
        self._versions: dict[tuple[str, int], tuple[VersionRecord, Any]] = {}
        # The last decoded metadata per address, reused while the stored bytes are unchanged.
        self._creds: dict[str, tuple[int, bytes, CredentialRecord]] = {}
        self._flights: Any = None  # oauth.ops.Flights, made on first refresh
        self._kinds: dict[str, str] = {}
        self._group = GroupCommit(self._commit_events)
        self._agroup: Any = None  # audit.agroup.AsyncGroupCommit, made by the first async read
        self._readers: Any = None  # aio.ThreadBatcher: async reads of a networked store
        self.access: AccessCache = getattr(policy, "access", None) or AccessCache(store)
        self._token_use: dict[str, str] = {}  # API token id -> last use, flushed by the scheduler
        self._verified: dict[str, tuple[Any, Principal, str | None, str]] = {}
        self.alert_hook: Callable[[str, str, dict[str, Any]], None] | None = None
        self.event_hook: Callable[[str, str], None] | None = None  # (action, result): metrics

    def __repr__(self) -> str:
        return f"Warden(store={redact_url(self._store.url)!r}, principal={self.principal.name!r})"

    @property
    def principal(self) -> Principal:
        """Who the current operation is done for (see `acting_as`)."""
        return (_CALLER.get() or self._caller).principal

    @property
    def store_dialect(self) -> str:
        """ "sqlite" or "postgres"."""
        return self._store.dialect

    @property
    def source(self) -> str:
        return (_CALLER.get() or self._caller).source

    @contextmanager
    def acting_as(
        self, principal: Principal, *, source: str = "api", client: dict[str, Any] | None = None
    ) -> Iterator[Warden]:
        """Operations in this block (this thread or task) are done for `principal`: checked
        against its grants and audited under its name, with the client's address."""
        token = _CALLER.set(Caller(principal, source, client))
        try:
            yield self
        finally:
            _CALLER.reset(token)

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        *,
        home: str | os.PathLike[str] | None = None,
        database_url: str | None = None,
        settings: Settings | None = None,
        source: str = "sdk",
        prompt: Callable[[str, bool], str] | None = None,
        principal: Principal | None = None,
        policy: Policy | None = None,
    ) -> Warden:
        """Open the store named by the environment (CREDWARDEN_HOME, ..._DATABASE_URL, key vars)."""
        if database_url is None and home is None and os.environ.get("CREDWARDEN_URL"):
            from .remote import RemoteWarden

            return RemoteWarden.from_env(source=source)
        settings = settings or Settings.from_env(home=home, database_url=database_url)
        store = open_store(settings.database_url, create=False)
        try:
            with store.transaction(write=False) as tx:
                meta = {r.key: r.body.decode() for r in tx.list(NS_META)}
                keks = [json.loads(r.body) for r in tx.list(NS_KEK)]
            if "store" not in meta:
                raise StoreError(
                    f"the database {store.url.split('://')[0]}://... holds no credwarden store",
                    hint="run `credwarden init` first",
                )
            key_source = select_source(settings)
            ctx = KeyContext(settings, dict(meta), prompt)
            master = key_source.load(ctx)
            return cls._assemble(
                store,
                meta,
                keks,
                master,
                settings,
                source,
                principal,
                policy,
                key_source.describe(ctx),
            )
        except BaseException:
            store.close()
            raise

    @classmethod
    def _assemble(
        cls,
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
        info = json.loads(meta["store"])
        store_id = info["store_id"]
        if policy is None:
            access = AccessCache(store)
            policy = GrantPolicy(access)
        keyring = Keyring(
            {
                k["term"]: unwrap_with_master(
                    master, b64d(k["wrapped"]), kek_aad(store_id, k["term"]), source=described
                )
                for k in keks
            },
            max(k["term"] for k in keks),
        )
        audit_key = unwrap_with_master(
            master,
            b64d(json.loads(meta["audit_key"])["wrapped"]),
            _audit_aad(store_id),
            source=described,
        )
        return cls(
            store=store,
            keyring=keyring,
            chain=AuditChain(audit_key),
            master=master,
            store_id=store_id,
            environments=info.get("environments", DEFAULT_ENVIRONMENTS),
            settings=settings,
            principal=principal or local_principal(),
            policy=policy,
            source=source,
            key_source=described,
        )

    @classmethod
    def init(
        cls,
        *,
        home: str | os.PathLike[str] | None = None,
        database_url: str | None = None,
        settings: Settings | None = None,
        source: str = "sdk",
        prompt: Callable[[str, bool], str] | None = None,
        environments: Sequence[str] | None = None,
    ) -> tuple[Warden, InitReport]:
        """Create the store and its keys; on an initialised store, check the key and return."""
        settings = settings or Settings.from_env(home=home, database_url=database_url)
        envs = list(environments or DEFAULT_ENVIRONMENTS)
        for e in envs:
            _check_env_name(e)
        os.makedirs(settings.home, mode=0o700, exist_ok=True)
        store = open_store(settings.database_url, create=True)
        key_source = select_source(settings)
        try:
            with store.transaction() as tx:
                meta = {r.key: r.body.decode() for r in tx.list(NS_META)}
                ctx = KeyContext(settings, dict(meta), prompt)
                described = key_source.describe(ctx)
                created = "store" not in meta
                if created:
                    master = _obtain_master(key_source, ctx)
                    store_id = os.urandom(16).hex()
                    now = iso(utcnow())
                    for k, v in ctx.meta.items():
                        if k not in meta:
                            tx.put(NS_META, k, v.encode(), rev=0)
                    tx.put(
                        NS_META,
                        "store",
                        dumps(
                            {
                                "store_id": store_id,
                                "created_at": now,
                                "environments": envs,
                                "format": 1,
                            }
                        ),
                        rev=0,
                    )
                    tx.put(
                        NS_META,
                        "audit_key",
                        dumps(
                            {
                                "wrapped": b64e(
                                    wrap_with_master(master, new_key(), _audit_aad(store_id))
                                )
                            }
                        ),
                        rev=0,
                    )
                    tx.put(
                        NS_KEK,
                        f"{1:08d}",
                        dumps(
                            {
                                "term": 1,
                                "created_at": now,
                                "wrapped": b64e(
                                    wrap_with_master(master, new_key(), kek_aad(store_id, 1))
                                ),
                            }
                        ),
                        rev=0,
                    )
                    meta = {r.key: r.body.decode() for r in tx.list(NS_META)}
                else:
                    master = key_source.load(ctx)
                keks = [json.loads(r.body) for r in tx.list(NS_KEK)]
                warden = cls._assemble(
                    store, meta, keks, master, settings, source, None, None, described
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

    def close(self) -> None:
        if self._agroup is not None:
            self._agroup.close()
        if self._readers is not None:
            self._readers.close()
        self._versions.clear()
        self._creds.clear()
        self._store.close()

    def __enter__(self) -> Warden:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the one operation path ----------------------------------------------------------

    def _allowed(self, action: str, address: str | None) -> bool:
        return self._policy.allows(self.principal, action, address)

    def _authorize(
        self,
        action: str,
        address: str | None,
        op: _Op | None = None,
        *,
        audit_as: str | None = None,
    ) -> None:
        """Refuse (and audit the refusal, as `audit_as` if given) unless the caller's grants
        allow `action`."""
        if not self._allowed(action, address):
            self._audit_alone(audit_as or action, address, "denied", op or _Op())
            raise self._denied(action, address)

    def _denied(self, action: str, address: str | None) -> PermissionDenied:
        return PermissionDenied(
            f"{self.principal.name} may not {action} {address or 'this store'}",
            hint="ask an admin for a grant: credwarden grant PRINCIPAL PATTERN --actions ...",
        )

    def _audit(self, tx: Tx, action: str, address: str | None, result: str, op: _Op) -> None:
        self._audit_many(tx, [(action, address, result, op)])

    def _audit_many(self, tx: Tx, entries: Sequence[tuple[str, str | None, str, _Op]]) -> None:
        """Events for several operations at once: one head read and update (group commit)."""
        if not entries:
            return
        default = self._caller
        try:
            self._chain.append_many(
                tx,
                [
                    (
                        (c := op.caller or default).principal.name,
                        c.source,
                        c.client,
                        action,
                        address,
                        result,
                        op.version,
                        op.detail,
                    )
                    for action, address, result, op in entries
                ],
            )
        except StoreError as exc:
            raise AuditError(
                f"the audit event could not be written ({exc.message}); the operation was refused",
                hint="check the database is writable and has space",
            ) from None
        if self.event_hook is not None:
            for action, _address, result, _op in entries:
                self.event_hook(action, result)

    def _audit_alone(self, action: str, address: str | None, result: str, op: _Op) -> None:
        try:
            with self._store.transaction() as tx:
                self._audit(tx, action, address, result, op)
        except StoreError as exc:
            raise AuditError(
                f"the audit event could not be written ({exc.message})",
                hint="check the database is writable and has space",
            ) from None

    def _op(
        self,
        action: str,
        address: str | None,
        work: Callable[[Tx, _Op], T],
        *,
        grouped: bool | None = None,
        needs: str | None = None,
    ) -> T:
        """Authorize, perform `work` in one transaction, audit it there; audit failures too.
        `needs`: the grant action to check when the audited `action` is not one itself."""
        op = _Op()
        self._authorize(needs or action, address, op, audit_as=action if needs else None)
        try:
            if action in READ_ACTIONS if grouped is None else grouped:
                return self._group.run(
                    lambda take: self._lead(action, address, work, op, take),
                    lambda: self._follow(work, op),
                    lambda: (action, address, "ok", op),
                )
            return self._lead(action, address, work, op, None)
        except AuditError:
            raise
        except CredwardenError as exc:
            self._audit_failure(action, address, exc, op)
            raise

    def _lead(
        self,
        action: str,
        address: str | None,
        work: Callable[[Tx, _Op], T],
        op: _Op,
        take: Callable[[], _list[Any]] | None,
    ) -> T:
        """The work and its event in one write transaction, plus (for reads) the events of the
        readers that queued meanwhile (group commit)."""
        auditing = False
        try:
            with self._store.transaction() as tx:
                result = work(tx, op)
                auditing = True
                self._audit_many(tx, [(action, address, "ok", op), *(take() if take else ())])
        except StoreError as exc:
            if auditing:
                raise AuditError(
                    f"the audit event could not be committed ({exc.message});"
                    " the operation was refused",
                    hint="check the database is writable and has space",
                ) from None
            raise
        return result

    def _follow(self, work: Callable[[Tx, _Op], T], op: _Op) -> T:
        """A read while another reader holds the audit transaction: a snapshot read; the
        leader then writes this read's event before we return."""
        with self._store.transaction(write=False) as tx:
            return work(tx, op)

    def _commit_events(self, entries: _list[Any]) -> None:
        try:
            with self._store.transaction() as tx:
                self._audit_many(tx, entries)
        except StoreError as exc:
            raise AuditError(
                f"the audit event could not be committed ({exc.message}); the read was refused",
                hint="check the database is writable and has space",
            ) from None

    def _audit_failure(
        self, action: str, address: str | None, exc: CredwardenError, op: _Op
    ) -> None:
        if isinstance(exc, ValidationError):
            return  # bad input changes nothing, the audit log included
        op.detail = {**op.detail, "error": exc.code}
        self._audit_alone(action, address, _failure_result(exc), op)

    # -- record helpers ------------------------------------------------------------------

    def _load(self, tx: Tx, address: Address | str) -> CredentialRecord:
        rec = tx.get(NS_CRED, str(address))
        if rec is None:
            raise NotFound(
                f"no credential at {address}", hint="`credwarden list` shows what exists"
            )
        cached = self._creds.get(rec.key)
        if cached is not None and cached[0] == rec.rev and cached[1] == rec.body:
            return cached[2]
        cred = CredentialRecord.from_bytes(rec.body, rec.rev)
        if len(self._creds) >= VERSION_CACHE:
            self._creds.clear()
        self._creds[rec.key] = (rec.rev, rec.body, cred)
        return cred

    def _load_version(
        self, tx: Tx, cred: CredentialRecord, version: int | None = None
    ) -> VersionRecord:
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
        ver = VersionRecord.from_bytes(rec.body, rec.rev)
        if ver.version != v:
            raise CryptoError(
                f"the stored version {v} of {cred.address} holds another version's record",
                hint="the database was altered; run `credwarden audit verify` and restore a backup",
            )
        return ver

    def _dek(self, tx: Tx, cred_id: str, ver: VersionRecord) -> Any:
        """The version's data key, unwrapped once and then kept with the (immutable) version."""
        cached = self._versions.get((cred_id, ver.version))
        if cached is not None:
            return cached[1]
        wrapped = b64d(ver.dek)
        if Keyring.term_of(wrapped) not in self._keyring.terms:
            self._reload_keks(tx)
        dek = data_cipher(self._keyring.unwrap(wrapped, dek_aad(cred_id, ver.version)))
        if len(self._versions) >= VERSION_CACHE:
            del self._versions[next(iter(self._versions))]
        self._versions[(cred_id, ver.version)] = (ver, dek)
        return dek

    def _reload_keks(self, tx: Tx) -> None:
        """Another process rotated the KEK: pick up the new terms."""
        for r in tx.list(NS_KEK):
            k = json.loads(r.body)
            if k["term"] not in self._keyring.terms:
                self._keyring.add(
                    k["term"],
                    unwrap_with_master(
                        self._master,
                        b64d(k["wrapped"]),
                        kek_aad(self.store_id, k["term"]),
                        source=self.key_source,
                    ),
                )
                self._keyring.active_term = max(self._keyring.active_term, k["term"])

    def _decrypt(
        self, tx: Tx, cred: CredentialRecord, ver: VersionRecord, names: Iterable[str] | None = None
    ) -> dict[str, str]:
        dek = self._dek(tx, cred.id, ver)
        secret = ver.secret
        return {
            name: open_field(
                dek, b64d(secret[name]), field_aad(cred.id, ver.version, name)
            ).decode()
            for name in (secret if names is None else names)
        }

    def _values(self, tx: Tx, cred: CredentialRecord, ver: VersionRecord) -> dict[str, str]:
        return {**ver.plain, **self._decrypt(tx, cred, ver)}

    def _seal(
        self, tx: Tx, cred_id: str, version: int, kind: Kind, fields: Mapping[str, str], note: str
    ) -> VersionRecord:
        newest = tx.list(NS_KEK)[-1].key
        if int(newest) > self._keyring.active_term:  # another process rotated the KEK
            self._reload_keks(tx)
        dek_raw = new_key()
        dek = data_cipher(dek_raw)
        secret, plain = {}, {}
        for name, value in fields.items():
            if kind.is_secret(name):
                secret[name] = b64e(
                    seal_field(dek, value.encode(), field_aad(cred_id, version, name))
                )
            else:
                plain[name] = value
        wrapped = self._keyring.wrap(dek_raw, dek_aad(cred_id, version))
        return VersionRecord(
            version, iso(utcnow()), self.principal.name, note, b64e(wrapped), secret, plain
        )

    def _seal_blob(self, tx: Tx, aad: str, plaintext: bytes) -> dict[str, str]:
        """Encrypt something that is not a credential version (e.g. a pending OAuth flow's
        PKCE verifier) under a fresh data key wrapped by the active KEK term; `aad` binds it
        to where it is stored."""
        newest = tx.list(NS_KEK)[-1].key
        if int(newest) > self._keyring.active_term:  # another process rotated the KEK
            self._reload_keks(tx)
        dek_raw = new_key()
        sealed = seal_field(data_cipher(dek_raw), plaintext, f"cw1|blob|{aad}".encode())
        wrapped = self._keyring.wrap(dek_raw, f"cw1|blob-dek|{aad}".encode())
        return {"dek": b64e(wrapped), "sealed": b64e(sealed)}

    def _open_blob(self, tx: Tx, blob: Mapping[str, str], aad: str) -> bytes:
        """The plaintext sealed by `_seal_blob` with the same `aad` (CryptoError otherwise)."""
        try:
            wrapped, sealed = b64d(blob["dek"]), b64d(blob["sealed"])
        except (KeyError, TypeError, ValueError):
            raise CryptoError("a sealed record is malformed") from None
        if Keyring.term_of(wrapped) not in self._keyring.terms:
            self._reload_keks(tx)
        dek = self._keyring.unwrap(wrapped, f"cw1|blob-dek|{aad}".encode())
        return open_field(data_cipher(dek), sealed, f"cw1|blob|{aad}".encode())

    def _info(
        self, cred: CredentialRecord, ver: VersionRecord, last_used: str | None
    ) -> CredentialInfo:
        fields: dict[str, str | None] = {**dict.fromkeys(ver.secret), **ver.plain}
        return CredentialInfo(
            address=cred.address,
            id=cred.id,
            kind=cred.kind,
            version=cred.version,
            provider=cred.provider,
            description=cred.description,
            owner=cred.owner,
            tags=dict(cred.tags),
            links=list(cred.links),
            created_at=cred.created_at,
            updated_at=cred.updated_at,
            rotated_at=cred.rotated_at,
            expires_at=cred.expires_at,
            rotate_every=cred.rotate_every,
            last_used_at=last_used,
            health=compute_health(
                now=utcnow(),
                expires_at=cred.expires_at,
                rotate_every=cred.rotate_every,
                rotated_at=cred.rotated_at,
                override=cred.health_override,
            ),
            fields=dict(sorted(fields.items())),
        )

    def _check_env(self, address: Address) -> None:
        if address.env not in self.environments:  # added by another process since open?
            with self._store.transaction(write=False) as tx:
                rec = tx.get(NS_META, "store")
            if rec is not None:
                self.environments = list(json.loads(rec.body).get("environments", []))
        if address.env not in self.environments:
            raise ValidationError(
                f"unknown environment {address.env!r} (known: {', '.join(self.environments)})",
                hint=f"add it with `credwarden environments add {address.env}`",
            )

    # -- reads ---------------------------------------------------------------------------

    def get(self, ref: str) -> Secret:
        """The value of one field (`addr#field`), or of the kind's main field."""
        address, wanted = parse_ref(ref)
        addr = str(address)
        return Secret(
            self._op("read", addr, lambda tx, op: self._get_work(addr, wanted, tx, op))[1]
        )

    async def aget_field(self, ref: str) -> tuple[str, str]:
        """`get` for code on an event loop: the field's name (the kind's main field when
        none is named) and its value."""
        address, wanted = parse_ref(ref)
        addr = str(address)
        return await self._aop("read", addr, lambda tx, op: self._get_work(addr, wanted, tx, op))

    def _get_work(self, addr: str, wanted: str | None, tx: Tx, op: _Op) -> tuple[str, str]:
        cred = self._load(tx, addr)
        ver = self._load_version(tx, cred)
        name = wanted or get_kind(cred.kind).main_field
        op.version = cred.version
        if name is None:
            fields = sorted([*ver.secret, *ver.plain])
            if len(fields) != 1:
                raise ValidationError(
                    f"{addr} is a {cred.kind} credential with several fields",
                    hint=f"name one: {addr}#FIELD (fields: {', '.join(fields)})",
                )
            name = fields[0]
        op.detail["field"] = name
        if name in ver.plain:
            return name, ver.plain[name]
        if name not in ver.secret:
            raise NotFound(
                f"{addr} has no field {name!r}",
                hint=f"its fields: {', '.join(sorted([*ver.secret, *ver.plain]))}",
            )
        return name, self._decrypt(tx, cred, ver, (name,))[name]

    def read(self, address: str) -> Credential:
        """Every field of the current version (secrets wrapped), with the metadata."""
        addr = str(parse_address(address))
        return self._op("read", addr, lambda tx, op: self._read_work(addr, tx, op))

    async def aread_values(self, address: str) -> tuple[int, dict[str, str]]:
        """`read` for code on an event loop (the API's value route): the current version
        number and every field's value, without the metadata; the event is group-committed and
        awaited before the values are returned."""
        addr = str(parse_address(address))
        return await self._aop("read", addr, lambda tx, op: self._values_work(addr, tx, op))

    def _values_work(self, addr: str, tx: Tx, op: _Op) -> tuple[int, dict[str, str]]:
        cred = self._load(tx, addr)
        ver = self._load_version(tx, cred)
        op.version = cred.version
        op.detail["fields"] = sorted([*ver.secret, *ver.plain])
        values = {**ver.plain, **self._decrypt(tx, cred, ver)}
        return cred.version, dict(sorted(values.items()))

    def _read_work(self, addr: str, tx: Tx, op: _Op) -> Credential:
        cred = self._load(tx, addr)
        ver = self._load_version(tx, cred)
        op.version = cred.version
        op.detail["fields"] = sorted([*ver.secret, *ver.plain])
        values: dict[str, Secret | str] = dict(ver.plain)
        values.update({k: Secret(v) for k, v in self._decrypt(tx, cred, ver).items()})
        return Credential(self._info(cred, ver, None), dict(sorted(values.items())))

    async def _aop(self, action: str, address: str | None, work: Callable[[Tx, _Op], T]) -> T:
        """`_op` for a read on an event loop. The event is group-committed (see
        audit/agroup.py) and awaited before the result is returned. On an embedded (SQLite)
        store the read runs inline (microseconds); on a networked one in a thread, so the loop
        never waits on the network."""

        embedded = self._store.dialect == "sqlite"
        if self._agroup is None:
            from .audit.agroup import AsyncGroupCommit

            self._agroup = AsyncGroupCommit(self._commit_events, inline=embedded)
        op = _Op()
        # Denials and failures are group-committed like successes: a flood of refused or
        # missing reads must not stall on one commit each.
        if not self._allowed(action, address):
            await self._agroup.run((action, address, "denied", op))
            raise self._denied(action, address)

        def read(fetched: Mapping[str, Record | None] | None = None) -> T:
            # One record is read (its versions are immutable and cached): no transaction.
            with self._store.statements() as tx:
                return work(tx if fetched is None else _Fetched(tx, fetched), op)

        try:
            result = read() if embedded else await self._in_reader(read, address or "")
        except CredwardenError as exc:
            if not isinstance(exc, ValidationError):
                op.detail = {**op.detail, "error": exc.code}
                await self._agroup.run((action, address, _failure_result(exc), op))
            raise
        await self._agroup.run((action, address, "ok", op))
        return result

    async def _in_reader(self, fn: Callable[[Any], T], address: str) -> T:
        """Run a store read in the facade's reader thread, batched with the others of the
        same loop iteration, their credential records fetched in one statement (aio.py)."""
        if self._readers is None:
            from .aio import ThreadBatcher

            def prefetch(keys: _list[str]) -> dict[str, Record | None]:
                asked = sorted(set(keys))
                with self._store.statements() as tx:
                    found = tx.get_many(NS_CRED, asked)
                return {k: found.get(k) for k in asked}  # None: did not exist

            self._readers = ThreadBatcher("cw-read", prefetch)
        result: T = await self._readers.run(fn, address)
        return result

    def headers(self, address: str) -> dict[str, Secret]:
        """The HTTP headers that authenticate with this credential. For an OAuth connection, an
        access token (refreshed first if needed): the `use` action. For a static secret (API
        key, password) the header carries the long-lived secret itself: the `read` action."""
        addr = str(parse_address(address))

        def work(tx: Tx, op: _Op) -> dict[str, str]:
            cred = self._load(tx, addr)
            ver = self._load_version(tx, cred)
            op.version = cred.version
            headers = get_kind(cred.kind).headers(self._values(tx, cred, ver))
            op.detail = {"via": "headers", "headers": sorted(headers)}
            return headers

        kind = self._kind_of(addr)
        if kind is not None and get_kind(kind).refreshable:
            # access_token() refreshes if needed and audits the use.
            return {"Authorization": Secret(f"Bearer {self.access_token(addr).reveal()}")}
        return {k: Secret(v) for k, v in self._op("read", addr, work).items()}

    # -- live checks ---------------------------------------------------------------------

    def test(
        self,
        address: str,
        *,
        template_vars: Mapping[str, str] | None = None,
        timeout: float = 15.0,
    ) -> Any:
        """Check a credential live against its provider; the outcome is audited and a rejection
        marks the credential `invalid` (a later success clears it). Returns a livetest.Outcome."""
        from .lifecycle.livetest import run_test

        addr = str(parse_address(address))
        self._authorize("test", addr)  # before anything is looked at or sent
        outcome = run_test(self, addr, dict(template_vars or {}), timeout)
        if outcome.message.startswith("nothing to test"):
            return outcome

        def work(tx: Tx, op: _Op) -> None:
            cred = self._load(tx, addr)
            op.version = cred.version
            op.detail = {
                k: v
                for k, v in outcome._asdict().items()
                if k in ("result", "method", "url", "status", "elapsed_ms", "mode")
            }
            override = cred.health_override
            if outcome.result == "rejected":
                override = "invalid"
            elif outcome.result == "ok" and override in ("invalid", "needs_reauth"):
                override = None
            if override != cred.health_override:
                self._put_cred(
                    tx, cred._replace(health_override=override, updated_at=iso(utcnow()))
                )

        self._op("test", addr, work, grouped=False)
        return outcome

    # -- OAuth ---------------------------------------------------------------------------

    def access_token(
        self,
        address: str,
        *,
        scopes: Sequence[str] = (),
        subject: str | None = None,
        leeway: int = 60,
        rejected: Secret | None = None,
    ) -> Secret:
        """A valid access token. An OAuth connection's is refreshed (once, whatever the
        concurrency) when within `leeway` seconds of expiry, or when `rejected` (a token an API
        answered 401 to) is still the stored one; a service account mints one for `scopes`
        (and `subject`: domain-wide delegation), cached until near expiry."""
        addr = str(parse_address(address))
        kind = self._kind_of(addr)
        if kind == "google_service_account":
            from .oauth.google import mint
            from .oauth.minted import minted_token

            return minted_token(
                self,
                addr,
                kind=kind,
                scopes=scopes,
                subject=subject,
                leeway=leeway,
                mint=lambda values, s, sub: mint(json.loads(values["key_json"]), s, sub),
            )
        if kind == "azure_service_principal":
            from .oauth.azure import mint as mint_entra
            from .oauth.minted import minted_token

            if subject:
                raise ValidationError("--subject is for Google service accounts")
            return minted_token(
                self,
                addr,
                kind=kind,
                scopes=scopes,
                subject=None,
                leeway=leeway,
                mint=lambda values, s, _sub: mint_entra(values, s),
            )
        from .oauth.ops import access_token

        return access_token(self, addr, leeway=leeway, rejected=rejected)

    def _kind_of(self, addr: str) -> str | None:
        """A credential's kind (never changes under an address while it exists), remembered."""
        kind = self._kinds.get(addr)
        if kind is None:
            with self._store.transaction(write=False) as tx:
                rec = tx.get(NS_CRED, addr)
            if rec is None:
                return None
            kind = self._kinds[addr] = CredentialRecord.from_bytes(rec.body, rec.rev).kind
        return kind

    def auth(self, address: str) -> Any:
        """An `httpx.Auth` sending the connection's token; on a 401 it refreshes once and
        retries once."""
        from .oauth.httpx_auth import WardenAuth

        return WardenAuth(self, address)

    def refresh_due(self, *, within: int = 300) -> _list[dict[str, Any]]:
        """Refresh the connections expiring within `within` seconds (the scheduler's hook)."""
        from .oauth.ops import refresh_due

        return refresh_due(self, within=within)

    def connect(
        self,
        address: str,
        *,
        provider: str,
        client: str,
        scopes: Sequence[str] = (),
        grant: str = "authorization_code",
        port: int = 0,
        open_url: Callable[[str], None] | None = None,
        show_device: Callable[[dict[str, Any]], None] | None = None,
        template_vars: Mapping[str, str] | None = None,
        timeout: float = 300.0,
    ) -> CredentialInfo:
        """Connect (or repair in place) an OAuth connection with a provider and a client."""
        from .oauth.connect import connect

        return connect(
            self,
            address,
            provider=provider,
            client=client,
            scopes=scopes,
            grant=grant,
            port=port,
            open_url=open_url,
            show_device=show_device,
            template_vars=dict(template_vars or {}),
            timeout=timeout,
        )

    def connect_start(
        self,
        address: str,
        *,
        provider: str,
        client: str,
        scopes: Sequence[str] = (),
        redirect_uri: str,
        template_vars: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Start an authorization code flow whose redirect comes to a server (`redirect_uri`)
        instead of a loopback listener: {"authorize_url", "flow", "expires_at", "redirect_uri"}.
        The state and PKCE verifier stay in the store (sealed) until `connect_finish`."""
        from .oauth.connect import connect_start

        return connect_start(
            self,
            address,
            provider=provider,
            client=client,
            scopes=scopes,
            redirect_uri=redirect_uri,
            template_vars=dict(template_vars or {}),
        )

    def connect_finish(
        self, state: str, query: Mapping[str, str], *, client: dict[str, Any] | None = None
    ) -> CredentialInfo:
        """Finish a flow begun by `connect_start` with the redirect's query (code, state or
        error): once only, as the principal who started it."""
        from .oauth.connect import connect_finish

        return connect_finish(self, state, dict(query), client=client)

    def connect_status(self, flow: str) -> dict[str, Any]:
        """{"status": "pending" | "done" | "failed" | "expired" | "unknown"} of a flow begun by
        `connect_start` (the caller must have started it or may describe its address)."""
        from .oauth.connect import connect_status

        return connect_status(self, flow)

    def describe(self, address: str) -> CredentialInfo:
        """Metadata, health and field names; secret values are not decrypted."""
        addr = str(parse_address(address))

        def work(tx: Tx, op: _Op) -> CredentialInfo:
            cred = self._load(tx, addr)
            op.version = cred.version
            used = usage.last_used(tx, [addr]).get(addr)
            return self._info(cred, self._load_version(tx, cred), used)

        usage.fold(self._store)
        return self._op("describe", addr, work)

    def list(
        self,
        *,
        env: str | None = None,
        service: str | None = None,
        kind: str | None = None,
        health: str | None = None,
    ) -> _list[CredentialInfo]:
        """The credentials this principal may describe, filtered."""
        for label, value in (("environment", env), ("service", service)):
            if value is not None and not _SEGMENT_RE.match(value):
                raise ValidationError(
                    f"invalid {label} {value[:64]!r}",
                    hint="names are lower-case letters, digits, '.', '_', '-'",
                )
        if kind is not None:
            get_kind(kind)

        def work(tx: Tx, op: _Op) -> _list[CredentialInfo]:
            op.detail = {
                k: v
                for k, v in (("env", env), ("service", service), ("kind", kind), ("health", health))
                if v
            }
            out = self._visible(tx, env=env, service=service, kind=kind)
            out = [i for i in out if health is None or i.health == health]
            op.detail["count"] = len(out)
            return out

        usage.fold(self._store)
        with self.access.pinned():  # the per-credential checks run inside the transaction
            return self._op("list", None, work)

    def history(self, address: str) -> _list[VersionInfo]:
        """Every version, newest first, without values."""
        addr = str(parse_address(address))

        def work(tx: Tx, op: _Op) -> _list[VersionInfo]:
            cred = self._load(tx, addr)
            op.version = cred.version
            versions = [
                VersionRecord.from_bytes(r.body, r.rev) for r in tx.list(NS_VERSION, cred.id + "/")
            ]
            return [
                VersionInfo(
                    v.version,
                    v.created_at,
                    v.created_by,
                    v.note,
                    sorted([*v.secret, *v.plain]),
                    v.version == cred.version,
                )
                for v in reversed(versions)
            ]

        return self._op("history", addr, work)

    # -- reports -------------------------------------------------------------------------

    def whoami(self) -> dict[str, Any]:
        """The principal operations are done for (no event: it reveals nothing stored)."""
        p = self.principal
        return {"name": p.name, "type": p.type}

    def report_expiring(self, *, within: int) -> _list[dict[str, Any]]:
        """Credentials that expired or expire within `within` seconds."""
        from datetime import timedelta

        from .lifecycle import reports

        horizon = utcnow() + timedelta(seconds=_check_span("within", within))
        return self._report(
            "expiring", {"within": within}, lambda i: reports.expiring(i, horizon=horizon)
        )

    def report_rotation(self) -> _list[dict[str, Any]]:
        """Credentials whose rotation policy is overdue."""
        from .lifecycle import reports

        now = utcnow()
        return self._report("rotation", {}, lambda i: reports.rotation_due(i, now=now))

    def report_unused(self, *, days: int) -> _list[dict[str, Any]]:
        """Credentials nobody read or used for `days` days."""
        from datetime import timedelta

        from .lifecycle import reports

        cutoff = utcnow() - timedelta(seconds=_check_span("days", days, unit=86400))
        return self._report("unused", {"days": days}, lambda i: reports.unused(i, cutoff=cutoff))

    def _report(
        self,
        name: str,
        detail: dict[str, Any],
        build: Callable[[_list[CredentialInfo]], _list[dict[str, Any]]],
    ) -> _list[dict[str, Any]]:
        """One `report` event; the rows cover only what the caller may describe."""

        def work(tx: Tx, op: _Op) -> _list[dict[str, Any]]:
            rows = build(self._visible(tx))
            op.detail = {"report": name, **detail, "count": len(rows)}
            return rows

        usage.fold(self._store)
        with self.access.pinned():
            return self._op("report", None, work, grouped=False)

    def _visible(
        self,
        tx: Tx,
        *,
        env: str | None = None,
        service: str | None = None,
        kind: str | None = None,
    ) -> _list[CredentialInfo]:
        """The credentials the caller may describe, with their last use (no event)."""
        creds = []
        for r in tx.list(NS_CRED, f"{env}/" if env else ""):
            cred = CredentialRecord.from_bytes(r.body, r.rev)
            a = parse_address(cred.address)
            if (service and a.service != service) or (kind and cred.kind != kind):
                continue
            if self._allowed("describe", cred.address):
                creds.append(cred)
        used = usage.last_used(tx, [c.address for c in creds])
        return [self._info(c, self._load_version(tx, c), used.get(c.address)) for c in creds]

    def review_permissions(
        self, *, days: int = 90, principal: str | None = None, flagged: bool = False
    ) -> _list[dict[str, Any]]:
        """The least-privilege review: every grant (of `principal`), its last use, and flags
        (unused for `days` days, broad, admin). Needs admin: it reads grants and the log."""
        from datetime import timedelta

        from .access.review import review

        cutoff = utcnow() - timedelta(seconds=_check_span("days", days, unit=86400))

        def work(tx: Tx, op: _Op) -> _list[dict[str, Any]]:
            grants = self._grants_in(tx, principal)
            events = {
                name: [AuditEvent.from_row(r) for r in tx.audit_scan(principal=name)]
                for name in {g.principal for g in grants}
            }
            rows = review(grants, self._protected_in(tx), events, cutoff=cutoff, flagged=flagged)
            op.detail = {
                "report": "permissions",
                "days": days,
                "count": len(rows),
                **({"principal": principal} if principal else {}),
            }
            return rows

        return self._op("review", None, work, grouped=False)

    # -- writes --------------------------------------------------------------------------

    def add(
        self,
        address: str,
        kind: str,
        fields: Mapping[str, str | Secret],
        *,
        provider: str | None = None,
        description: str | None = None,
        owner: str | None = None,
        tags: Mapping[str, str] | None = None,
        links: Sequence[str] | None = None,
        expires_at: str | None = None,
        rotate_every: int | None = None,
    ) -> CredentialInfo:
        """Validate and store a new credential as version 1."""
        a = parse_address(address)
        addr = str(a)
        k = get_kind(kind)
        self._check_env(a)
        values = k.validate(_reveal(fields))
        meta = _check_meta(
            description=description,
            owner=owner,
            tags=tags or {},
            links=links or [],
            provider=provider,
            expires_at=expires_at or k.derived_expiry(values),
            rotate_every=rotate_every if rotate_every is not None else k.default_rotate_every,
        )

        def work(tx: Tx, op: _Op) -> CredentialInfo:
            now = iso(utcnow())
            cred = CredentialRecord.new(addr, k.name, now, **meta)
            ver = self._seal(tx, cred.id, 1, k, values, "created")
            try:
                cred = cred._replace(rev=tx.put(NS_CRED, addr, cred.to_bytes(), rev=0))
            except AlreadyExists:
                raise AlreadyExists(
                    f"{addr} already exists",
                    hint="use `credwarden update` to change it, or `credwarden rm` first",
                ) from None
            tx.put(NS_VERSION, version_key(cred.id, 1), ver.to_bytes(), rev=0)
            op.version = 1
            op.detail = {"kind": k.name, "fields": sorted(values)}
            return self._info(cred, ver, None)

        return self._op("write", addr, work)

    def update(
        self,
        address: str,
        *,
        fields: Mapping[str, str | Secret] | None = None,
        unset: Sequence[str] = (),
        expected_version: int | None = None,
        note: str = "updated",
        **metadata: Any,
    ) -> CredentialInfo:
        """Change fields (a new version) and/or metadata; `expected_version` guards a race.

        Metadata keywords: description, owner, tags, links (these two replace), add_tags,
        add_links (these merge with the stored ones), provider, expires_at, rotate_every
        (None clears one).
        """
        addr = str(parse_address(address))
        unknown = set(metadata) - {
            "description",
            "owner",
            "tags",
            "links",
            "provider",
            "expires_at",
            "rotate_every",
            "add_tags",
            "add_links",
        }
        if unknown:
            raise ValidationError(
                f"unknown metadata {', '.join(sorted(unknown))}",
                hint="metadata: description, owner, tags, add_tags, links, add_links, provider,"
                " expires_at, rotate_every",
            )
        changes = _reveal(fields or {})
        add_tags = dict(metadata.pop("add_tags", None) or {})
        add_links = list(metadata.pop("add_links", None) or [])
        checked = _check_meta(**metadata) if metadata else {}
        _check_meta(tags=add_tags, links=add_links)
        changed_meta = sorted(
            {*metadata, *(["tags"] if add_tags else []), *(["links"] if add_links else [])}
        )
        if not changes and not unset and not changed_meta:
            raise ValidationError(
                "nothing to update", hint="give --field, --unset-field or a metadata option"
            )

        def work(tx: Tx, op: _Op) -> CredentialInfo:
            cred = self._load(tx, addr)
            _expect(cred, expected_version)
            ver = self._load_version(tx, cred)
            now = iso(utcnow())
            if changes or unset:
                k = get_kind(cred.kind)
                values = self._values(tx, cred, ver)
                for name in unset:
                    if name not in values:
                        raise ValidationError(
                            f"{addr} has no field {name!r} to unset",
                            hint=f"its fields: {', '.join(sorted(values))}",
                        )
                    del values[name]
                values.update(changes)
                values = k.validate(values)
                cred = cred._replace(version=cred.version + 1, rotated_at=now)
                ver = self._seal(tx, cred.id, cred.version, k, values, note)
                self._put_version(tx, cred, ver)
                op.detail["fields"] = sorted({*changes, *unset})
            if changed_meta:
                op.detail["metadata"] = changed_meta
            merged = dict(checked)
            if add_tags:  # merged here, inside the transaction: a concurrent change is kept
                merged["tags"] = {**checked.get("tags", cred.tags), **add_tags}
            if add_links:
                kept = list(checked.get("links", cred.links))
                merged["links"] = kept + [u for u in add_links if u not in kept]
            cred = cred._replace(**merged, updated_at=now)
            cred = cred._replace(rev=self._put_cred(tx, cred))
            op.version = cred.version
            return self._info(cred, ver, None)

        return self._op("write", addr, work)

    def _put_version(self, tx: Tx, cred: CredentialRecord, ver: VersionRecord) -> None:
        """Store a new version; a racing writer that made the same version first wins."""
        try:
            tx.put(NS_VERSION, version_key(cred.id, ver.version), ver.to_bytes(), rev=0)
        except AlreadyExists:
            raise Conflict(
                f"{cred.address} was changed by someone else first",
                hint="look at it again (`credwarden show`) and retry",
            ) from None

    def _put_cred(self, tx: Tx, cred: CredentialRecord) -> int:
        try:
            return tx.put(NS_CRED, cred.address, cred.to_bytes(), rev=cred.rev)
        except Conflict:
            raise Conflict(
                f"{cred.address} was changed by someone else first",
                hint="look at it again (`credwarden show`) and retry",
            ) from None

    def rollback(
        self, address: str, to_version: int, *, expected_version: int | None = None
    ) -> CredentialInfo:
        """Make an old version's values current again, as a new version."""
        addr = str(parse_address(address))

        def work(tx: Tx, op: _Op) -> CredentialInfo:
            cred = self._load(tx, addr)
            _expect(cred, expected_version)
            if to_version == cred.version:
                raise ValidationError(
                    f"version {to_version} is already current",
                    hint=f"`credwarden history {addr}` lists the versions",
                )
            old = self._load_version(tx, cred, to_version)
            values = self._values(tx, cred, old)
            now = iso(utcnow())
            cred = cred._replace(version=cred.version + 1, updated_at=now, rotated_at=now)
            ver = self._seal(
                tx, cred.id, cred.version, get_kind(cred.kind), values, f"rollback to v{to_version}"
            )
            self._put_version(tx, cred, ver)
            cred = cred._replace(rev=self._put_cred(tx, cred))
            op.version = cred.version
            op.detail = {"from_version": to_version}
            return self._info(cred, ver, None)

        return self._op("write", addr, work)

    def remove(
        self, address: str, *, expected_version: int | None = None, revoke: bool = True
    ) -> str | None:
        """Delete a credential and crypto-shred its versions (the audit record stays). An OAuth
        connection's grant is first revoked at the provider (RFC 7009) when it names a
        revocation endpoint; returns how that went ("revoked", an error code, or None)."""
        addr = str(parse_address(address))
        revoked = (
            self._revoke_before_remove(addr) if revoke and self._allowed("delete", addr) else None
        )

        def work(tx: Tx, op: _Op) -> None:
            cred = self._load(tx, addr)
            _expect(cred, expected_version)
            for r in tx.list(NS_VERSION, cred.id + "/"):
                tx.delete(NS_VERSION, r.key, rev=r.rev)
            used = tx.get(usage.NS_USAGE, addr)
            if used is not None:
                tx.delete(usage.NS_USAGE, addr, rev=used.rev)
            for r in tx.list(NS_TOKEN, cred.id + "/"):  # minted tokens cached for it
                tx.delete(NS_TOKEN, r.key, rev=r.rev)
            self._kinds.pop(addr, None)
            try:
                tx.delete(NS_CRED, addr, rev=cred.rev)
            except Conflict:
                raise Conflict(f"{addr} was changed by someone else first") from None
            op.version = cred.version
            op.detail = {"kind": cred.kind, **({"revocation": revoked} if revoked else {})}

        self._op("delete", addr, work)
        return revoked

    def _revoke_before_remove(self, addr: str) -> str | None:
        with self._store.transaction(write=False) as tx:
            rec = tx.get(NS_CRED, addr)
            if rec is None:
                return None
            cred = CredentialRecord.from_bytes(rec.body, rec.rev)
            ver = self._load_version(tx, cred)
            if cred.kind != "oauth2" or not ver.plain.get("revocation_url"):
                return None
            values = self._values(tx, cred, ver)
            from .oauth.ops import _client_auth

            try:
                client = _client_auth(self, tx, values.get("client", ""))
            except CredwardenError as exc:
                return f"client_{exc.code}"
        from .oauth.grants import revoke

        hint = "refresh_token" if values.get("refresh_token") else "access_token"
        try:
            revoke(values["revocation_url"], client, values[hint], hint)
        except CredwardenError as exc:
            return exc.code
        return "revoked"

    # -- environments, import and export -------------------------------------------------

    def add_environment(self, name: str) -> _list[str]:
        _check_env_name(name)

        def work(tx: Tx, op: _Op) -> _list[str]:
            rec = tx.get(NS_META, "store")
            assert rec is not None
            info = json.loads(rec.body)
            if name in info["environments"]:
                raise AlreadyExists(f"environment {name!r} already exists")
            info["environments"].append(name)
            tx.put(NS_META, "store", dumps(info), rev=rec.rev)
            op.detail = {"environment": name}
            return list(info["environments"])

        self.environments = self._op("admin", None, work)
        return self.environments

    def import_entries(
        self,
        entries: Sequence[tuple[str, str]],
        *,
        env: str,
        service: str,
        overwrite: bool = False,
    ) -> _list[CredentialInfo]:
        """Store each VAR=value as a `secret` credential `env/service/var-name`, all or nothing."""
        k = get_kind("secret")
        planned: dict[str, tuple[str, dict[str, str]]] = {}
        for var, value in entries:
            addr = env_var_address(env, service, var)
            if addr in planned:
                raise ValidationError(
                    f"{var} and {planned[addr][0]} both map to {addr}",
                    hint="rename one of them before importing",
                )
            planned[addr] = (var, k.validate({"value": value, "env_var": var}))
        if not planned:
            raise ValidationError(
                "nothing to import: the file has no variables",
                hint="a .env file has KEY=value lines; a JSON file is an object of strings",
            )
        self._check_env(parse_address(next(iter(planned))))
        for addr in planned:
            self._authorize("write", addr)
        out: _list[CredentialInfo] = []
        current = ""
        try:
            with self._store.transaction() as tx:
                for current, (_var, values) in planned.items():
                    out.append(self._import_one(tx, current, k, values, overwrite))
        except Conflict as exc:
            self._audit_alone(
                "write", current, "conflict", _Op(detail={"via": "import", "error": exc.code})
            )
            if not isinstance(exc, AlreadyExists):
                raise
            raise AlreadyExists(
                exc.message,
                hint="pass --overwrite to replace existing values (each becomes a new version)",
            ) from None
        return out

    def _import_one(
        self, tx: Tx, addr: str, k: Kind, values: dict[str, str], overwrite: bool
    ) -> CredentialInfo:
        op = _Op(detail={"via": "import"})
        existing = tx.get(NS_CRED, addr)
        now = iso(utcnow())
        if existing is None:
            cred = CredentialRecord.new(addr, k.name, now)
            ver = self._seal(tx, cred.id, 1, k, values, "imported")
            cred = cred._replace(rev=tx.put(NS_CRED, addr, cred.to_bytes(), rev=0))
        else:
            cred = CredentialRecord.from_bytes(existing.body, existing.rev)
            if not overwrite:
                raise AlreadyExists(f"{addr} already exists")
            if cred.kind != k.name:
                raise ValidationError(
                    f"{addr} is a {cred.kind} credential, not a secret",
                    hint="import into another service, or remove it first",
                )
            cred = cred._replace(version=cred.version + 1, updated_at=now, rotated_at=now)
            ver = self._seal(tx, cred.id, cred.version, k, values, "imported")
            cred = cred._replace(rev=self._put_cred(tx, cred))
        self._put_version(tx, cred, ver)
        op.version = cred.version
        self._audit(tx, "write", addr, "ok", op)
        return self._info(cred, ver, None)

    def env_vars(self, *, env: str, only: Sequence[str] = ()) -> dict[str, Secret]:
        """The env vars of every readable credential in `env` (filtered by patterns), each read
        audited. Two credentials giving the same variable is an error, not a silent pick."""
        if not _SEGMENT_RE.match(env):
            raise ValidationError(
                f"invalid environment {env[:64]!r}",
                hint="environments are lower-case names such as dev, staging, prod",
            )
        self._check_env(Address(env, "x", "x"))
        out: dict[str, tuple[str, str]] = {}
        withheld: _list[str] = []
        with self.access.pinned(), self._store.transaction() as tx:
            records = [
                CredentialRecord.from_bytes(r.body, r.rev) for r in tx.list(NS_CRED, env + "/")
            ]
            for cred in records:
                if only and not any(matches(p, cred.address) for p in only):
                    continue
                if not self._allowed("read", cred.address):
                    withheld.append(cred.address)
                    continue
                ver = self._load_version(tx, cred)
                values = self._values(tx, cred, ver)
                for var, value in (
                    get_kind(cred.kind).env_vars(parse_address(cred.address), values).items()
                ):
                    if var in out:
                        raise ValidationError(
                            f"{cred.address} and {out[var][0]} both set {var}",
                            hint="set env_var on one of them, or narrow with --only",
                        )
                    out[var] = (cred.address, value)
                self._audit(
                    tx,
                    "read",
                    cred.address,
                    "ok",
                    _Op(
                        cred.version,
                        {
                            "via": "env",
                            "vars": sorted(v for v, (a, _) in out.items() if a == cred.address),
                        },
                    ),
                )
            if withheld or not out:
                # Each credential read has its event; when the caller's grants held some back,
                # or nothing was read at all, the call itself leaves one too.
                self._audit(
                    tx,
                    "env_vars",
                    None,
                    "partial" if withheld else "empty",
                    _Op(
                        detail={
                            "env": env,
                            "vars": len(out),
                            **({"only": list(only)[:20]} if only else {}),
                            **({"withheld": withheld[:50]} if withheld else {}),
                        }
                    ),
                )
        return {var: Secret(value) for var, (_a, value) in sorted(out.items())}

    # -- principals, API tokens and grants ----------------------------------------------

    def _access_op(self, action: str, work: Callable[[Tx, _Op], T]) -> T:
        """A store-wide change of access (needs `admin` on `*`); every node reloads after."""
        try:
            return self._op(action, None, work, grouped=False)
        finally:
            self.access.invalidate()

    def add_principal(
        self,
        name: str,
        *,
        type: str = "workflow",
        owner: str | None = None,
        description: str | None = None,
        role: str | None = None,
        pattern: str = "*",
    ) -> PrincipalRecord:
        """A new principal (user, workflow or service); with `role`, granted it on `pattern`
        (and, for the admin role, on each protected environment by name)."""
        from .access import manage
        from .access.grants import normalize_pattern

        def work(tx: Tx, op: _Op) -> PrincipalRecord:
            now = iso(utcnow())
            rec = manage.add_principal(
                tx,
                name,
                type=type,
                owner=owner,
                description=description,
                created_by=self.principal.name,
                now=now,
            )
            op.detail = {"principal": name, "type": type}
            if role is not None:
                patterns = [pattern]
                if role == "admin" and normalize_pattern(pattern) == "*/*/*":
                    patterns += [f"{e}/*/*" for e in sorted(self._protected_in(tx))]
                for p in patterns:
                    manage.add_grant(
                        tx, name, p, actions=None, role=role, created_by=rec.created_by, now=now
                    )
                op.detail["role"] = role
            return rec

        return self._access_op("principal.add", work)

    def _protected_in(self, tx: Tx) -> frozenset[str]:
        from .access.state import protected_of

        row = tx.get(NS_META, "store")
        return protected_of(json.loads(row.body) if row is not None else {})

    def principals(self) -> _list[PrincipalRecord]:
        def work(tx: Tx, op: _Op) -> _list[PrincipalRecord]:
            from .access.records import NS_PRINCIPAL

            out = [PrincipalRecord.from_bytes(r.body) for r in tx.list(NS_PRINCIPAL)]
            op.detail = {"count": len(out)}
            return out

        return self._op("principal.list", None, work)

    def principal_info(self, name: str) -> dict[str, Any]:
        """A principal with its grants and tokens (ids and dates, never the token)."""
        from .access import manage
        from .access.records import NS_APITOKEN, TokenRecord

        def work(tx: Tx, op: _Op) -> dict[str, Any]:
            rec = manage.principal(tx, name)
            op.detail = {"principal": name}
            tokens = [
                TokenRecord.from_bytes(r.body).to_dict()
                for r in tx.list(NS_APITOKEN)
                if json.loads(r.body)["principal"] == name
            ]
            return {
                **rec.to_dict(),
                "grants": [g.to_dict() for g in self._grants_in(tx, name)],
                "tokens": tokens,
            }

        return self._op("principal.show", None, work)

    def remove_principal(self, name: str) -> dict[str, int]:
        from .access import manage

        def work(tx: Tx, op: _Op) -> dict[str, int]:
            removed = manage.remove_principal(tx, name)
            op.detail = {"principal": name, **removed}
            return removed

        return self._access_op("principal.remove", work)

    def issue_token(
        self, name: str, *, expires_in: int | None = None, description: str | None = None
    ) -> tuple[dict[str, Any], Secret]:
        """A new API token for a principal: returned once, stored only as a salted hash."""
        from datetime import timedelta

        from .access import manage

        if expires_in is not None and (not isinstance(expires_in, int) or expires_in <= 0):
            raise ValidationError("the token lifetime must be a positive number of seconds")

        def work(tx: Tx, op: _Op) -> tuple[dict[str, Any], Secret]:
            now = utcnow()
            expires = iso(now + timedelta(seconds=expires_in)) if expires_in else None
            rec, new = manage.add_token(
                tx,
                name,
                expires_at=expires,
                description=description,
                created_by=self.principal.name,
                now=iso(now),
            )
            op.detail = {"principal": name, "token": rec.id, "expires_at": expires}
            return rec.to_dict(), Secret(new.text)

        return self._access_op("token.issue", work)

    def tokens(self, name: str | None = None) -> _list[dict[str, Any]]:
        from .access.records import NS_APITOKEN, TokenRecord

        def work(tx: Tx, op: _Op) -> _list[dict[str, Any]]:
            recs = [TokenRecord.from_bytes(r.body) for r in tx.list(NS_APITOKEN)]
            out = [t.to_dict() for t in recs if name is None or t.principal == name]
            op.detail = {"count": len(out), **({"principal": name} if name else {})}
            return out

        return self._op("token.list", None, work)

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        from .access import manage

        def work(tx: Tx, op: _Op) -> dict[str, Any]:
            rec = manage.revoke_token(tx, token_id, iso(utcnow()))
            op.detail = {"principal": rec.principal, "token": rec.id}
            return rec.to_dict()

        return self._access_op("token.revoke", work)

    def grant(
        self,
        name: str,
        pattern: str,
        *,
        actions: str | Sequence[str] | None = None,
        role: str | None = None,
    ) -> Grant:
        """Allow a principal `actions` (or a role's) on credentials matching `pattern`."""
        from .access import manage

        def work(tx: Tx, op: _Op) -> Grant:
            g = manage.add_grant(
                tx,
                name,
                pattern,
                actions=list(actions) if isinstance(actions, list | tuple) else actions,  # type: ignore[arg-type]
                role=role,
                created_by=self.principal.name,
                now=iso(utcnow()),
            )
            op.detail = {"principal": name, "pattern": g.pattern, "actions": sorted(g.actions)}
            return g

        return self._access_op("grant.add", work)

    def revoke_grant(self, name: str, pattern: str, *, actions: str | None = None) -> Grant | None:
        from .access import manage

        def work(tx: Tx, op: _Op) -> Grant | None:
            left = manage.revoke_grant(tx, name, pattern, actions=actions)
            op.detail = {
                "principal": name,
                "pattern": pattern,
                "left": sorted(left.actions) if left else [],
            }
            return left

        return self._access_op("grant.revoke", work)

    def grants(self, name: str | None = None) -> _list[Grant]:
        def work(tx: Tx, op: _Op) -> _list[Grant]:
            out = self._grants_in(tx, name)
            op.detail = {"count": len(out), **({"principal": name} if name else {})}
            return out

        return self._op("grant.list", None, work)

    def _grants_in(self, tx: Tx, name: str | None) -> _list[Grant]:
        from .access.records import NS_GRANT

        out = [Grant.from_dict(json.loads(r.body)) for r in tx.list(NS_GRANT)]
        return sorted(
            (g for g in out if name is None or g.principal == name),
            key=lambda g: (g.principal, g.pattern),
        )

    def protect_environment(self, env: str, protected: bool = True) -> _list[str]:
        """Mark an environment protected: grants must then name it (no `*` environment)."""
        from .access import manage

        def work(tx: Tx, op: _Op) -> _list[str]:
            out = manage.set_protected(tx, env, protected)
            op.detail = {"environment": env, "protected": protected}
            return out

        return self._access_op("environment.protect", work)

    def protected_environments(self) -> _list[str]:
        """The protected environments (anyone authenticated may know which they are)."""

        def work(tx: Tx, op: _Op) -> _list[str]:
            row = tx.get(NS_META, "store")
            if row is not None:
                self.environments = list(json.loads(row.body).get("environments", []))
            return sorted(self._protected_in(tx))

        return self._op("list", None, work)

    def authenticate(
        self, token: str, *, client: dict[str, Any] | None = None, audit: bool = True
    ) -> Principal:
        """The principal an API token belongs to; an unknown, expired or revoked token (or one
        whose principal was removed) is refused, and the refusal audited."""
        from .access.tokens import secret_matches, split_token

        state = self.access.current()  # one snapshot for the whole check (and the cache)
        known = self.remembered(token)
        if known is not None:
            return known
        parts = split_token(token)
        rec = state.tokens.get(parts[0]) if parts else None
        settled = True  # everything came from `state`: safe to remember against it
        if parts and rec is None:
            rec = self.access.token(parts[0])  # made elsewhere since the last load?
            settled = False
        now = _now_second()
        reason = None
        owner = None
        if not token:
            reason = "missing"
        elif parts is None:
            reason = "malformed"
        elif rec is None or not secret_matches(rec.salt, rec.hash, parts[1]):
            reason = "unknown"
        elif rec.revoked_at is not None:
            reason = "revoked"
        elif rec.expires_at is not None and rec.expires_at <= now:
            reason = "expired"
        else:
            owner = state.principals.get(rec.principal)
            if owner is None:  # added elsewhere since the last load, or removed
                self.access.invalidate()
                owner = self.access.current().principals.get(rec.principal)
                settled = False
            if owner is None:
                reason = "principal_removed"
        if reason is not None:
            if audit:
                named = rec.principal if rec is not None and reason != "unknown" else "anonymous"
                self._audit_refusal(named, "denied", reason, client)
            raise Unauthenticated(
                f"the API token is {reason if reason in ('revoked', 'expired') else 'not valid'}",
                hint="ask an admin for a new one: credwarden principal token NAME",
            )
        assert rec is not None and owner is not None
        self._token_use[rec.id] = now
        principal = Principal(owner.name, owner.type)
        if settled:
            if len(self._verified) > 10_000:
                self._verified.clear()
            # Remembered against this access state: any change of tokens, grants or principals
            # (here or on another node) makes a new state, and the token is checked afresh.
            self._verified[token] = (state, principal, rec.expires_at, rec.id)
        return principal

    def remembered(self, token: str) -> Principal | None:
        """The principal of a token already verified against the access state held in memory,
        without reading anything (None: check it in full with `authenticate`)."""
        state = self.access.peek()
        hit = self._verified.get(token)
        if state is None or hit is None or hit[0] is not state:
            return None
        now = _now_second()
        if hit[2] is not None and hit[2] <= now:
            return None
        self._token_use[hit[3]] = now
        return hit[1]

    def note_lockout(self, ip: str, client: dict[str, Any]) -> None:
        """Audit (once per lock-out) that a source is refused after repeated bad tokens."""
        self._audit_refusal("anonymous", "rate_limited", "too_many_failures", client)

    def _audit_refusal(
        self, named: str, result: str, reason: str, client: dict[str, Any] | None
    ) -> None:
        """An `authenticate` event for a request that got no principal."""
        op = _Op(detail={"reason": reason})
        op.caller = Caller(Principal(named, "unknown"), "api", client)
        self._audit_alone("authenticate", None, result, op)

    def health(self) -> dict[str, Any]:
        """Whether the store answers (for /healthz: no credential data, no audit event)."""
        try:
            with self._store.transaction(write=False) as tx:
                tx.get(NS_META, "store")
            reachable = True
        except StoreError:
            reachable = False
        return {"store": self._store.dialect, "store_reachable": reachable}

    def flush_token_use(self) -> int:
        """Write the tokens' last-use times kept in memory (the scheduler calls this)."""
        from .access import manage

        used, self._token_use = self._token_use, {}
        if not used:
            return 0
        try:
            with self._store.transaction() as tx:
                return manage.record_use(tx, used)
        except BaseException:
            for k, v in used.items():  # kept for the next flush
                if self._token_use.get(k, "") < v:
                    self._token_use[k] = v
            raise

    # -- audit and keys ------------------------------------------------------------------

    def audit_events(
        self,
        *,
        address: str | None = None,
        principal: str | None = None,
        since: str | None = None,
        limit: int | None = None,
    ) -> _list[AuditEvent]:
        """Audit events, oldest first (the last `limit` when given)."""
        if address is not None:
            address = str(parse_address(address))

        def work(tx: Tx, op: _Op) -> _list[AuditEvent]:
            rows = list(
                tx.audit_scan(
                    address=address,
                    principal=principal,
                    since=since,
                    limit=limit,
                    newest_first=limit is not None,
                )
            )
            if limit is not None:
                rows.reverse()
            op.detail = {"count": len(rows)}
            return [AuditEvent.from_row(r) for r in rows]

        return self._op("audit.read", None, work)

    def verify_audit(self) -> VerifyReport:
        """Check the whole chain; the report names the first bad event."""
        self._authorize("audit.verify", None)
        with self._store.transaction(write=False) as tx:
            head = tx.audit_head()
            report = self._chain.verify(tx.audit_scan(), head)
        if report.ok and report.checked == 0:
            # `init` always writes the first event: an empty log on a store was emptied.
            report = VerifyReport(False, 0, 1, "the audit log is empty: its events were removed")
        try:
            self._audit_alone(
                "audit.verify",
                None,
                "ok" if report.ok else "tampered",
                _Op(detail=report.to_dict()),
            )
        except AuditError:
            if report.ok:
                raise
            # A tampered log may refuse new events (a forged row in the way): the report of
            # what is wrong matters more than recording that it was asked for.
        return report

    def rotate_key(
        self, *, progress: Callable[[int, int], None] | None = None, batch: int = 200
    ) -> dict[str, int]:
        """Add a KEK term and re-wrap every data key under it, online and in batches."""

        def add_term(tx: Tx, op: _Op) -> tuple[int, bytes]:
            self._reload_keks(tx)
            term = max(self._keyring.terms) + 1
            kek = new_key()
            tx.put(
                NS_KEK,
                f"{term:08d}",
                dumps(
                    {
                        "term": term,
                        "created_at": iso(utcnow()),
                        "wrapped": b64e(
                            wrap_with_master(self._master, kek, kek_aad(self.store_id, term))
                        ),
                    }
                ),
                rev=0,
            )
            op.detail = {"term": term}
            return term, kek

        term, kek = self._op("key.rotate", None, add_term)
        self._keyring.add(term, kek)  # only once the new term is committed
        self._keyring.active_term = term
        with self._store.transaction(write=False) as tx:
            keys = [r.key for r in tx.list(NS_VERSION)]
        done = 0
        for start in range(0, len(keys), batch):
            with self._store.transaction() as tx:
                for key in keys[start : start + batch]:
                    self._rewrap(tx, key, term)
            done = min(start + batch, len(keys))
            if progress:
                progress(done, len(keys))
        if not keys and progress:
            progress(0, 0)

        def finish(tx: Tx, op: _Op) -> None:
            op.detail = {"term": term, "rewrapped": len(keys)}

        self._op("key.rewrap", None, finish)
        return {"term": term, "rewrapped": len(keys)}

    def _rewrap(self, tx: Tx, key: str, term: int) -> None:
        rec = tx.get(NS_VERSION, key)
        if rec is None:
            return  # removed meanwhile
        ver = VersionRecord.from_bytes(rec.body, rec.rev)
        wrapped = b64d(ver.dek)
        if Keyring.term_of(wrapped) >= term:
            return
        cred_id, version = key.split("/", 1)
        aad = dek_aad(cred_id, int(version))
        ver = ver._replace(dek=b64e(self._keyring.wrap(self._keyring.unwrap(wrapped, aad), aad)))
        tx.put(NS_VERSION, key, ver.to_bytes(), rev=rec.rev)


_NOW: list[Any] = [0, ""]


def _now_second() -> str:
    """The current time as stored (ISO, UTC), recomputed once per second: token expiry and
    last-use times need no finer grain, and the check runs on every API request."""
    import time

    second = int(time.time())
    if _NOW[0] != second:
        _NOW[0], _NOW[1] = second, iso(utcnow())
    return str(_NOW[1])


def env_var_address(env: str, service: str, var: str) -> str:
    """The address an imported variable gets: `DATABASE_URL` -> `env/service/database-url`."""
    name = var.lower().replace("_", "-").strip("-")
    try:
        return str(parse_address(f"{env}/{service}/{name}"))
    except CredwardenError as exc:
        raise ValidationError(
            f"cannot import {var[:64]!r} into {env}/{service}: {exc.message}",
            hint="variable names become credential names: letters and digits",
        ) from None


class _Fetched(Tx):
    """A statement-level Tx whose credential records were fetched for a whole batch of reads
    (one round trip); anything else is read as usual."""

    __slots__ = ("_fetched", "_tx")

    def __init__(self, tx: Tx, fetched: Mapping[str, Record | None]) -> None:
        self._tx = tx
        self._fetched = fetched

    def get(self, ns: str, key: str) -> Record | None:
        if ns == NS_CRED and key in self._fetched:
            return self._fetched[key]
        return self._tx.get(ns, key)

    def put(self, ns: str, key: str, body: bytes, *, rev: int) -> int:
        return self._tx.put(ns, key, body, rev=rev)

    def delete(self, ns: str, key: str, *, rev: int) -> None:
        self._tx.delete(ns, key, rev=rev)

    def list(self, ns: str, prefix: str = "") -> _list[Record]:
        return self._tx.list(ns, prefix)

    def audit_head(self) -> Any:
        return self._tx.audit_head()

    def audit_append(self, rows: Any, head: Any) -> None:
        self._tx.audit_append(rows, head)

    def audit_scan(self, **kw: Any) -> Any:
        return self._tx.audit_scan(**kw)


def _failure_result(exc: CredwardenError) -> str:
    """The audit result of a failed operation."""
    if isinstance(exc, NotFound):
        return "not_found"
    return "conflict" if isinstance(exc, Conflict) else "error"


def _obtain_master(source: MasterKeySource, ctx: KeyContext) -> bytes:
    if source.exists(ctx):
        return source.load(ctx)
    try:
        return source.create(ctx)
    except FileExistsError:  # another init made the key file meanwhile
        return source.load(ctx)


def _reveal(fields: Mapping[str, str | Secret]) -> dict[str, str]:
    return {k: v.reveal() if isinstance(v, Secret) else v for k, v in fields.items()}


def _expect(cred: CredentialRecord, expected_version: int | None) -> None:
    if expected_version is not None and cred.version != expected_version:
        raise Conflict(
            f"{cred.address} is at version {cred.version}, not {expected_version}:"
            " someone changed it first",
            hint="look at it again and retry",
        )


MAX_SPAN_S = 100 * 366 * 86400


def _check_span(name: str, value: int, *, unit: int = 1) -> int:
    """A report's window in seconds (`value` in units of `unit` seconds), at most 100 years."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value * unit <= MAX_SPAN_S:
        raise ValidationError(
            f"{name} must be a positive number of at most {MAX_SPAN_S // unit}"
            f" {'days' if unit == 86400 else 'seconds'}",
            hint="e.g. 90d",
        )
    return value * unit


def _check_env_name(name: str) -> None:
    if not _SEGMENT_RE.match(name) or len(name) > 64:
        raise ValidationError(
            f"invalid environment name {name[:64]!r}",
            hint="lower-case letters, digits, '.', '_', '-'",
        )


def _check_meta(**meta: Any) -> dict[str, Any]:
    """Validate metadata keywords; only the ones given are returned."""
    out: dict[str, Any] = {}
    for key in ("description", "owner", "provider"):
        if key in meta:
            v = meta[key]
            if v is not None and (not isinstance(v, str) or len(v) > MAX_TEXT):
                raise ValidationError(
                    f"{key} must be text of at most {MAX_TEXT} characters",
                    hint=f"shorten the {key}; put longer documentation behind a --link",
                )
            out[key] = v or None
    if "tags" in meta:
        tags = dict(meta["tags"] or {})
        for k, v in tags.items():
            if not _TAG_KEY_RE.match(k) or not isinstance(v, str) or len(v) > 256:
                raise ValidationError(
                    f"invalid tag {k[:64]!r}",
                    hint="tags are key=value, keys lower-case like team or cost-center",
                )
        out["tags"] = tags
    if "links" in meta:
        links = list(meta["links"] or [])
        for link in links:
            if (
                not isinstance(link, str)
                or len(link) > MAX_TEXT
                or not link.startswith(("https://", "http://"))
            ):
                raise ValidationError(
                    "links must be http(s) URLs of at most 2000 characters",
                    hint="e.g. --link https://wiki.example.com/runbooks/stripe",
                )
        out["links"] = links
    if "expires_at" in meta:
        v = meta["expires_at"]
        if v is not None:
            try:
                if not isinstance(v, str):
                    raise TypeError
                v = iso(parse_iso(v))
            except (ValueError, TypeError):
                raise ValidationError(
                    "expires_at must be an ISO date or timestamp",
                    hint="e.g. 2027-05-01 or 2027-05-01T12:00:00Z",
                ) from None
        out["expires_at"] = v
    if "rotate_every" in meta:
        v = meta["rotate_every"]
        if v is not None and (
            not isinstance(v, int) or isinstance(v, bool) or v <= 0 or v > MAX_ROTATE_EVERY
        ):
            raise ValidationError(
                "rotate_every must be a positive number of seconds (at most 100 years)",
                hint="on the command line: --rotate-every 90d",
            )
        out["rotate_every"] = v
    return out


__all__ = ["InitReport", "Warden"]
