"""Environments (dev, staging, prod, ...), and moving many credentials at once: importing
variables (all or nothing) and handing a workflow its environment variables."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

from ..access.state import protected_of
from ..address import matches, parse_address
from ..errors import AlreadyExists, Conflict, ValidationError
from ..kinds import Kind, get_kind
from ..lifecycle.health import credential_info
from ..model import NS_META, CredentialInfo, CredentialRecord, dumps, store_info
from ..operation import Op
from ..secret import Secret
from ..store import Tx, rows
from ..timeutil import iso, utcnow
from .base import WardenBase
from .checks import SEGMENT_RE, check_env_name, env_var_address


class EnvironmentOps(WardenBase):
    """Environments, import and environment variables."""

    def add_environment(self, name: str) -> builtins.list[str]:
        check_env_name(name)

        def work(tx: Tx, op: Op) -> builtins.list[str]:
            rec = tx.get(NS_META, "store")
            if rec is None:
                raise rows.corrupt(rows.record_name(NS_META, "store"), "it is missing")
            info = store_info(rec.body)
            info.setdefault("environments", [])
            if name in info["environments"]:
                raise AlreadyExists(f"environment {name!r} already exists")
            info["environments"].append(name)
            tx.put(NS_META, "store", dumps(info), rev=rec.rev)
            op.detail = {"environment": name}
            return list(info["environments"])

        self.environments = self._run("admin", None, work)
        return self.environments

    def protect_environment(self, env: str, protected: bool = True) -> builtins.list[str]:
        """Mark an environment protected: grants must then name it (no `*` environment)."""
        from ..access import manage

        def work(tx: Tx, op: Op) -> builtins.list[str]:
            out = manage.set_protected(tx, env, protected)
            op.detail = {"environment": env, "protected": protected}
            return out

        try:
            return self._run("environment.protect", None, work, grouped=False)
        finally:
            self.access.invalidate()

    def protected_environments(self) -> builtins.list[str]:
        """The protected environments (anyone authenticated may know which they are)."""

        def work(tx: Tx, op: Op) -> builtins.list[str]:
            row = tx.get(NS_META, "store")
            info = store_info(row.body) if row is not None else {}
            if row is not None:
                self.environments = list(info.get("environments", []))
            return sorted(protected_of(info))

        return self._run("list", None, work)

    # -- import and env vars -------------------------------------------------------------------

    def import_entries(
        self,
        entries: Sequence[tuple[str, str]],
        *,
        env: str,
        service: str,
        overwrite: bool = False,
    ) -> builtins.list[CredentialInfo]:
        """Store each VAR=value as a `secret` credential `env/service/var-name`, all or nothing
        (one `write` event per credential, in the import's one transaction)."""
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
        self.records.check_env(parse_address(next(iter(planned))).env)
        for addr in planned:
            self.ops.authorize("write", addr)
        out: builtins.list[CredentialInfo] = []
        current = ""
        try:
            with self._store.transaction() as tx:
                for current, (_var, values) in planned.items():
                    out.append(self._import_one(tx, current, k, values, overwrite))
        except Conflict as exc:
            self.ops.audit_alone(
                "write", current, "conflict", Op(detail={"via": "import", "error": exc.code})
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
        op = Op(detail={"via": "import"})
        existing = self.records.find(tx, addr)
        now = iso(utcnow())
        by = self.principal.name
        if existing is None:
            cred = CredentialRecord.new(addr, k.name, now)
            ver = self.records.seal(tx, cred.id, 1, k, values, "imported", by=by)
            cred = self.records.create(tx, cred, ver)
        else:
            if not overwrite:
                raise AlreadyExists(f"{addr} already exists")
            if existing.kind != k.name:
                raise ValidationError(
                    f"{addr} is a {existing.kind} credential, not a secret",
                    hint="import into another service, or remove it first",
                )
            cred = existing._replace(version=existing.version + 1, updated_at=now, rotated_at=now)
            ver = self.records.seal(tx, cred.id, cred.version, k, values, "imported", by=by)
            self.records.put_version(tx, cred, ver)
            cred = self.records.put(tx, cred)
        op.version = cred.version
        self.ops.audit(tx, [("write", addr, "ok", op)])
        return credential_info(cred, ver, None)

    def env_vars(self, *, env: str, only: Sequence[str] = ()) -> dict[str, Secret]:
        """The env vars of every readable credential in `env` (filtered by patterns): one
        `read` event per credential read. Two credentials giving the same variable is an
        error, not a silent pick."""
        if not SEGMENT_RE.match(env):
            raise ValidationError(
                f"invalid environment {env[:64]!r}",
                hint="environments are lower-case names such as dev, staging, prod",
            )
        self.records.check_env(env)
        out: dict[str, tuple[str, str]] = {}
        withheld: builtins.list[str] = []
        with self.access.pinned(), self._store.transaction() as tx:
            for cred in self.records.list(tx, env + "/"):
                if only and not any(matches(p, cred.address) for p in only):
                    continue
                if not self.ops.allowed("read", cred.address):
                    withheld.append(cred.address)
                    continue
                ver = self.records.load_version(tx, cred)
                values = self.records.values(tx, cred, ver)
                kind = get_kind(cred.kind)
                for var, value in kind.env_vars(parse_address(cred.address), values).items():
                    if var in out:
                        raise ValidationError(
                            f"{cred.address} and {out[var][0]} both set {var}",
                            hint="set env_var on one of them, or narrow with --only",
                        )
                    out[var] = (cred.address, value)
                mine = sorted(v for v, (a, _) in out.items() if a == cred.address)
                read = Op(cred.version, {"via": "env", "vars": mine})
                self.ops.audit(tx, [("read", cred.address, "ok", read)])
            if withheld or not out:
                # Each credential read has its event; when the caller's grants held some back,
                # or nothing was read at all, the call itself leaves one too.
                detail: dict[str, Any] = {
                    "env": env,
                    "vars": len(out),
                    **({"only": list(only)[:20]} if only else {}),
                    **({"withheld": withheld[:50]} if withheld else {}),
                }
                result = "partial" if withheld else "empty"
                self.ops.audit(tx, [("env_vars", None, result, Op(detail=detail))])
        return {var: Secret(value) for var, (_a, value) in sorted(out.items())}


__all__ = ["EnvironmentOps"]
