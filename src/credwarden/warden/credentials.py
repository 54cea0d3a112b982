"""Credentials: read (get, read), describe (show, list, history), and write (add, update,
rollback, remove). Each call is one operation: one audit event."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any

from ..address import parse_address, parse_ref
from ..errors import NotFound, StoreCorrupt, ValidationError
from ..kinds import get_kind
from ..lifecycle.health import corrupt_info, credential_info
from ..model import (
    NS_TOKEN,
    Credential,
    CredentialInfo,
    CredentialRecord,
    VersionInfo,
    VersionRecord,
)
from ..operation import Op
from ..records import expect_version
from ..secret import Secret
from ..store import Tx
from ..timeutil import iso, utcnow
from ..watch import usage
from .base import WardenBase
from .checks import METADATA, check_meta, check_segment, reveal


class CredentialOps(WardenBase):
    """Reading, describing and changing credentials."""

    # -- reads -----------------------------------------------------------------------------

    def get(self, ref: str) -> Secret:
        """The value of one field (`addr#field`), or of the kind's main field."""
        address, wanted = parse_ref(ref)
        addr = str(address)
        return Secret(self._run("read", addr, lambda tx, op: self._field(addr, wanted, tx, op))[1])

    async def aget_field(self, ref: str) -> tuple[str, str]:
        """`get` for code on an event loop: the field's name (the kind's main field when
        none is named) and its value."""
        address, wanted = parse_ref(ref)
        addr = str(address)
        return await self.ops.arun("read", addr, lambda tx, op: self._field(addr, wanted, tx, op))

    def _field(self, addr: str, wanted: str | None, tx: Tx, op: Op) -> tuple[str, str]:
        cred = self.records.load(tx, addr)
        ver = self.records.load_version(tx, cred)
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
        return name, self.records.decrypt(tx, cred, ver, (name,))[name]

    def read(self, address: str) -> Credential:
        """Every field of the current version (secrets wrapped), with the metadata."""
        addr = str(parse_address(address))

        def work(tx: Tx, op: Op) -> Credential:
            cred, ver, values = self._all_values(addr, tx, op)
            wrapped: dict[str, Secret | str] = dict(ver.plain)
            wrapped.update({k: Secret(v) for k, v in values.items() if k not in ver.plain})
            return Credential(credential_info(cred, ver, None), dict(sorted(wrapped.items())))

        return self._run("read", addr, work)

    async def aread_values(self, address: str) -> tuple[int, dict[str, str]]:
        """`read` for code on an event loop (the API's value route): the current version
        number and every field's value, without the metadata; the event is group-committed and
        awaited before the values are returned."""
        addr = str(parse_address(address))

        def work(tx: Tx, op: Op) -> tuple[int, dict[str, str]]:
            cred, _ver, values = self._all_values(addr, tx, op)
            return cred.version, dict(sorted(values.items()))

        return await self.ops.arun("read", addr, work)

    def _all_values(
        self, addr: str, tx: Tx, op: Op
    ) -> tuple[CredentialRecord, VersionRecord, dict[str, str]]:
        cred = self.records.load(tx, addr)
        ver = self.records.load_version(tx, cred)
        op.version = cred.version
        op.detail["fields"] = sorted([*ver.secret, *ver.plain])
        return cred, ver, self.records.values(tx, cred, ver)

    # -- describing ------------------------------------------------------------------------

    def describe(self, address: str) -> CredentialInfo:
        """Metadata, health and field names; secret values are not decrypted."""
        return self._describe(address, versions=False)[0]

    def show(self, address: str) -> tuple[CredentialInfo, builtins.list[VersionInfo]]:
        """`describe` and `history` in one operation (one event): what `credwarden show`
        prints."""
        return self._describe(address, versions=True)

    def _describe(
        self, address: str, *, versions: bool
    ) -> tuple[CredentialInfo, builtins.list[VersionInfo]]:
        addr = str(parse_address(address))

        def work(tx: Tx, op: Op) -> tuple[CredentialInfo, builtins.list[VersionInfo]]:
            cred = self.records.load(tx, addr)
            op.version = cred.version
            used = usage.last_used(tx, [addr]).get(addr)
            info = credential_info(cred, self.records.load_version(tx, cred), used)
            if versions:
                op.detail["versions"] = True
            return info, self._versions(tx, cred) if versions else []

        usage.fold(self._store)
        return self._run("describe", addr, work)

    def history(self, address: str) -> builtins.list[VersionInfo]:
        """Every version, newest first, without values."""
        addr = str(parse_address(address))

        def work(tx: Tx, op: Op) -> builtins.list[VersionInfo]:
            cred = self.records.load(tx, addr)
            op.version = cred.version
            return self._versions(tx, cred)

        return self._run("history", addr, work)

    def _versions(self, tx: Tx, cred: CredentialRecord) -> builtins.list[VersionInfo]:
        return [
            VersionInfo(
                v.version,
                v.created_at,
                v.created_by,
                v.note,
                sorted([*v.secret, *v.plain]),
                v.version == cred.version,
            )
            for v in reversed(self.records.versions(tx, cred))
        ]

    def list(
        self,
        *,
        env: str | None = None,
        service: str | None = None,
        kind: str | None = None,
        health: str | None = None,
    ) -> builtins.list[CredentialInfo]:
        """The credentials this principal may describe, filtered."""
        check_segment("environment", env)
        check_segment("service", service)
        if kind is not None:
            get_kind(kind)

        def work(tx: Tx, op: Op) -> builtins.list[CredentialInfo]:
            filters = (("env", env), ("service", service), ("kind", kind), ("health", health))
            op.detail = {k: v for k, v in filters if v}
            out = self._visible(tx, env=env, service=service, kind=kind)
            out = [i for i in out if health is None or i.health == health]
            op.detail["count"] = len(out)
            return out

        usage.fold(self._store)
        with self.access.pinned():  # the per-credential checks run inside the transaction
            return self._run("list", None, work)

    def _visible(
        self,
        tx: Tx,
        *,
        env: str | None = None,
        service: str | None = None,
        kind: str | None = None,
    ) -> builtins.list[CredentialInfo]:
        """The credentials the caller may describe, with their last use (no event). One whose
        stored record does not decode is listed as `corrupt` (unless a kind is asked for)."""
        creds = []
        bad: builtins.list[tuple[str, StoreCorrupt]] = []
        for cred in self.records.list(tx, f"{env}/" if env else "", corrupt=bad):
            if (service and parse_address(cred.address).service != service) or (
                kind and cred.kind != kind
            ):
                continue
            if self.ops.allowed("describe", cred.address):
                creds.append(cred)
        used = usage.last_used(tx, [c.address for c in creds])
        out = []
        unreadable = [address for address, _ in bad]
        for c in creds:
            try:
                out.append(
                    credential_info(c, self.records.load_version(tx, c), used.get(c.address))
                )
            except StoreCorrupt:
                unreadable.append(c.address)
        for address in unreadable:
            segments = address.split("/")
            if kind or (service and segments[1:2] != [service]):
                continue
            if self.ops.allowed("describe", address):
                out.append(corrupt_info(address))
        return sorted(out, key=lambda i: i.address)

    # -- writes ------------------------------------------------------------------------------

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
        self.records.check_env(a.env)
        values = k.validate(reveal(fields))
        meta = check_meta(
            description=description,
            owner=owner,
            tags=tags or {},
            links=links or [],
            provider=provider,
            expires_at=expires_at or k.derived_expiry(values),
            rotate_every=rotate_every if rotate_every is not None else k.default_rotate_every,
        )

        def work(tx: Tx, op: Op) -> CredentialInfo:
            cred = CredentialRecord.new(addr, k.name, iso(utcnow()), **meta)
            ver = self.records.seal(tx, cred.id, 1, k, values, "created", by=self.principal.name)
            cred = self.records.create(tx, cred, ver)
            op.version = 1
            op.detail = {"kind": k.name, "fields": sorted(values)}
            return credential_info(cred, ver, None)

        return self._run("write", addr, work)

    def update(
        self,
        address: str,
        *,
        fields: Mapping[str, str | Secret] | None = None,
        unset: Sequence[str] = (),
        expected_version: int | None = None,
        note: str = "updated",
        main: str | Secret | None = None,
        **metadata: Any,
    ) -> CredentialInfo:
        """Change fields (a new version) and/or metadata; `expected_version` guards a race.
        `main`: a new value for the kind's main field (what `update --stdin` reads).

        Metadata keywords: description, owner, tags, links (these two replace), add_tags,
        add_links (these merge with the stored ones), provider, expires_at, rotate_every
        (None clears one).
        """
        addr = str(parse_address(address))
        unknown = set(metadata) - set(METADATA)
        if unknown:
            raise ValidationError(
                f"unknown metadata {', '.join(sorted(unknown))}",
                hint=f"metadata: {', '.join(METADATA)}",
            )
        changes = reveal(fields or {})
        main_value = main.reveal() if isinstance(main, Secret) else main
        add_tags = dict(metadata.pop("add_tags", None) or {})
        add_links = list(metadata.pop("add_links", None) or [])
        checked = check_meta(**metadata) if metadata else {}
        check_meta(tags=add_tags, links=add_links)
        changed_meta = sorted(
            {*metadata, *(["tags"] if add_tags else []), *(["links"] if add_links else [])}
        )
        if not changes and not unset and main_value is None and not changed_meta:
            raise ValidationError(
                "nothing to update", hint="give --field, --unset-field or a metadata option"
            )

        def work(tx: Tx, op: Op) -> CredentialInfo:
            cred = self.records.load(tx, addr)
            expect_version(cred, expected_version)
            ver = self.records.load_version(tx, cred)
            now = iso(utcnow())
            if changes or unset or main_value is not None:
                k = get_kind(cred.kind)
                new = dict(changes)
                if main_value is not None:
                    new.update(_main_change(k, cred.kind, new, main_value))
                values = self.records.values(tx, cred, ver)
                for name in unset:
                    if name not in values:
                        raise ValidationError(
                            f"{addr} has no field {name!r} to unset",
                            hint=f"its fields: {', '.join(sorted(values))}",
                        )
                    del values[name]
                values.update(new)
                values = k.validate(values)
                cred = cred._replace(version=cred.version + 1, rotated_at=now)
                ver = self.records.seal(
                    tx, cred.id, cred.version, k, values, note, by=self.principal.name
                )
                self.records.put_version(tx, cred, ver)
                op.detail["fields"] = sorted({*new, *unset})
            if changed_meta:
                op.detail["metadata"] = changed_meta
            merged = dict(checked)
            if add_tags:  # merged here, inside the transaction: a concurrent change is kept
                merged["tags"] = {**checked.get("tags", cred.tags), **add_tags}
            if add_links:
                kept = list(checked.get("links", cred.links))
                merged["links"] = kept + [u for u in add_links if u not in kept]
            cred = self.records.put(tx, cred._replace(**merged, updated_at=now))
            op.version = cred.version
            return credential_info(cred, ver, None)

        return self._run("write", addr, work)

    def rollback(
        self, address: str, to_version: int, *, expected_version: int | None = None
    ) -> CredentialInfo:
        """Make an old version's values current again, as a new version."""
        addr = str(parse_address(address))

        def work(tx: Tx, op: Op) -> CredentialInfo:
            cred = self.records.load(tx, addr)
            expect_version(cred, expected_version)
            if to_version == cred.version:
                raise ValidationError(
                    f"version {to_version} is already current",
                    hint=f"`credwarden history {addr}` lists the versions",
                )
            old = self.records.load_version(tx, cred, to_version)
            values = self.records.values(tx, cred, old)
            now = iso(utcnow())
            cred = cred._replace(version=cred.version + 1, updated_at=now, rotated_at=now)
            ver = self.records.seal(
                tx,
                cred.id,
                cred.version,
                get_kind(cred.kind),
                values,
                f"rollback to v{to_version}",
                by=self.principal.name,
            )
            self.records.put_version(tx, cred, ver)
            cred = self.records.put(tx, cred)
            op.version = cred.version
            op.detail = {"from_version": to_version}
            return credential_info(cred, ver, None)

        return self._run("write", addr, work)

    def remove(
        self, address: str, *, expected_version: int | None = None, revoke: bool = True
    ) -> str | None:
        """Delete a credential and crypto-shred its versions (the audit record stays). An OAuth
        connection's grant is first revoked at the provider (RFC 7009, or the provider's own
        revocation request); returns how that went ("revoked", an error code, or None)."""
        addr = str(parse_address(address))
        revoked = self._revoke_grant(addr) if revoke and self.ops.allowed("delete", addr) else None

        def work(tx: Tx, op: Op) -> None:
            cred = self.records.load(tx, addr)
            expect_version(cred, expected_version)
            used = tx.get(usage.NS_USAGE, addr)
            if used is not None:
                tx.delete(usage.NS_USAGE, addr, rev=used.rev)
            for r in tx.list(NS_TOKEN, cred.id + "/"):  # minted tokens cached for it
                tx.delete(NS_TOKEN, r.key, rev=r.rev)
            self.records.delete(tx, cred)
            op.version = cred.version
            op.detail = {"kind": cred.kind, **({"revocation": revoked} if revoked else {})}

        self._run("delete", addr, work)
        return revoked

    def _revoke_grant(self, addr: str) -> str | None:
        """Revoke an OAuth connection's grant at its provider before it is removed (no event
        of its own: the removal's event records the outcome)."""
        from ..oauth.revocation import revoke_connection

        return revoke_connection(self.records, addr, self.settings.home)


def _main_change(k: Any, kind: str, given: Mapping[str, str], value: str) -> dict[str, str]:
    """{main field: value} for a kind that has one main field."""
    main = k.main_field
    if main is None:
        raise ValidationError(
            f"a {kind} credential has no single main field to set from standard input",
            hint="set fields with --field NAME=VALUE (secret ones are prompted for)",
        )
    if main in given:
        raise ValidationError(f"{main} is given twice (as a field and as the main value)")
    return {main: value}


__all__ = ["CredentialOps"]
