"""Where the master key comes from: env var, key file, passphrase (Argon2id), keyring, plug-ins.

A source is two methods (`load`, and `create` for `init`) plus a description
used in error messages. Third parties add sources through the entry-point group
`credwarden.master_key_sources`; select one with CREDWARDEN_MASTER_KEY_SOURCE.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, ClassVar

from ..errors import MasterKeyError
from ..settings import Settings
from ..store import rows
from .envelope import KEY_BYTES, new_key

ENTRY_POINT_GROUP = "credwarden.master_key_sources"
MAX_KEY_FILE = 4096
"""A key file is 45 bytes of base64; reading more than this would only read garbage."""


class KeyContext:
    """What a source may use: settings, the store's plain metadata, and a prompt if interactive."""

    __slots__ = ("meta", "prompt", "settings")

    def __init__(
        self,
        settings: Settings,
        meta: MutableMapping[str, str] | None = None,
        prompt: Callable[[str, bool], str] | None = None,
    ) -> None:
        self.settings = settings
        self.meta: MutableMapping[str, str] = {} if meta is None else meta
        self.prompt = prompt


def decode_key(text: str, *, source: str) -> bytes:
    """Decode base64 of 32 bytes, or explain what is wrong (never echoing the text)."""
    try:
        raw = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise MasterKeyError(
            f"the master key from {source} is not valid base64",
            hint="a master key is base64 of 32 random bytes, e.g. from"
            " `python -c 'import os,base64;print(base64.b64encode(os.urandom(32)).decode())'`",
        ) from None
    if len(raw) != KEY_BYTES:
        raise MasterKeyError(
            f"the master key from {source} decodes to {len(raw)} bytes; it must be {KEY_BYTES}",
            hint="a master key is base64 of 32 random bytes",
        )
    return raw


def encode_key(key: bytes) -> str:
    return base64.b64encode(key).decode()


class MasterKeySource(ABC):
    """One way of obtaining the master key."""

    name: ClassVar[str]

    @abstractmethod
    def load(self, ctx: KeyContext) -> bytes:
        """Return the 32-byte master key or raise MasterKeyError saying what to do."""

    def create(self, ctx: KeyContext) -> bytes:
        """Make and keep a new master key (for `init`); by default the source only loads."""
        return self.load(ctx)

    def exists(self, ctx: KeyContext) -> bool:
        """Whether a key is already there (so `init` never overwrites one)."""
        return True

    @abstractmethod
    def describe(self, ctx: KeyContext) -> str:
        """Where the key comes from, for messages (never the key)."""


class EnvSource(MasterKeySource):
    name = "env"

    def load(self, ctx: KeyContext) -> bytes:
        if not ctx.settings.master_key:
            raise MasterKeyError("CREDWARDEN_MASTER_KEY is not set")
        return decode_key(ctx.settings.master_key, source=self.describe(ctx))

    def describe(self, ctx: KeyContext) -> str:
        return "CREDWARDEN_MASTER_KEY"


class FileSource(MasterKeySource):
    """A key file (0600): the embedded default that `init` makes."""

    name = "file"

    def path(self, ctx: KeyContext) -> str:
        return ctx.settings.master_key_file or os.path.join(ctx.settings.home, "master.key")

    def exists(self, ctx: KeyContext) -> bool:
        return os.path.exists(self.path(ctx))

    def describe(self, ctx: KeyContext) -> str:
        return f"key file {self.path(ctx)}"

    def load(self, ctx: KeyContext) -> bytes:
        path = self.path(ctx)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise MasterKeyError(
                f"no master key: {self.describe(ctx)} does not exist",
                hint="run `credwarden init` to create a store, or set CREDWARDEN_MASTER_KEY /"
                " CREDWARDEN_MASTER_KEY_FILE to the key of an existing one",
            ) from None
        except OSError as exc:
            raise MasterKeyError(
                f"cannot read {self.describe(ctx)} ({exc.strerror or type(exc).__name__})",
                hint="check the path and its permissions",
            ) from None
        if not stat.S_ISREG(st.st_mode):  # a FIFO would block the read forever
            raise MasterKeyError(
                f"{self.describe(ctx)} is not a regular file",
                hint="point CREDWARDEN_MASTER_KEY_FILE at the key file `credwarden init` made",
            )
        if os.name == "posix" and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise MasterKeyError(
                f"{self.describe(ctx)} is readable by other users",
                hint=f"run `chmod 600 {path}`",
            )
        try:
            # O_NONBLOCK: should the file have been swapped for a FIFO since the stat, no hang.
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
            with os.fdopen(fd, "rb") as fh:
                raw = fh.read(MAX_KEY_FILE)
        except OSError as exc:
            raise MasterKeyError(
                f"cannot read {self.describe(ctx)} ({exc.strerror or type(exc).__name__})",
                hint="check the file's permissions",
            ) from None
        return decode_key(raw.decode("ascii", errors="replace"), source=self.describe(ctx))

    def create(self, ctx: KeyContext) -> bytes:
        path = self.path(ctx)
        os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
        key = new_key()
        # O_EXCL: never overwrite an existing key, even when racing another init.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(encode_key(key) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return key


class PassphraseSource(MasterKeySource):
    """A master key derived from a passphrase with Argon2id; salt and cost live in the store."""

    name = "passphrase"
    TIME_COST = 3
    MEMORY_KIB = 64 * 1024
    PARALLELISM = 2

    def describe(self, ctx: KeyContext) -> str:
        return "passphrase (Argon2id)"

    def exists(self, ctx: KeyContext) -> bool:
        return "kdf" in ctx.meta

    def _passphrase(self, ctx: KeyContext, *, confirm: bool) -> str:
        if ctx.settings.passphrase:
            return ctx.settings.passphrase
        if ctx.prompt is None:
            raise MasterKeyError(
                "a passphrase is needed and there is no terminal to ask for it",
                hint="set CREDWARDEN_PASSPHRASE",
            )
        return ctx.prompt("Master passphrase", confirm)

    def _derive(self, passphrase: str, params: Mapping[str, Any]) -> bytes:
        from argon2.low_level import Type, hash_secret_raw

        try:
            salt = base64.b64decode(params["salt"], validate=True)
        except (binascii.Error, ValueError):
            raise _kdf_corrupt("its salt is not base64") from None
        return hash_secret_raw(
            passphrase.encode(),
            salt,
            time_cost=params["t"],
            memory_cost=params["m"],
            parallelism=params["p"],
            hash_len=KEY_BYTES,
            type=Type.ID,
        )

    def load(self, ctx: KeyContext) -> bytes:
        raw = ctx.meta.get("kdf")
        if raw is None:
            raise MasterKeyError(
                "this store was not initialised with a passphrase",
                hint="unset CREDWARDEN_MASTER_KEY_SOURCE, or use the store's own key source",
            )
        return self._derive(self._passphrase(ctx, confirm=False), _kdf_params(raw))

    def create(self, ctx: KeyContext) -> bytes:
        import json

        passphrase = self._passphrase(ctx, confirm=True)
        if len(passphrase) < 12:
            raise MasterKeyError(
                "the passphrase is shorter than 12 characters", hint="choose a longer passphrase"
            )
        params: dict[str, int | str] = {
            "alg": "argon2id",
            "salt": base64.b64encode(os.urandom(16)).decode(),
            "t": self.TIME_COST,
            "m": self.MEMORY_KIB,
            "p": self.PARALLELISM,
        }
        ctx.meta["kdf"] = json.dumps(params, sort_keys=True)
        return self._derive(passphrase, params)


KDF_SHAPE = rows.Shape(
    "passphrase key derivation",
    {
        "salt": rows.STR,
        "t": rows.bounded(1, 1000),
        "m": rows.bounded(8, 16 * 1024 * 1024),  # KiB: up to 16 GiB, never an allocation bomb
        "p": rows.bounded(1, 255),
    },
    {"alg": rows.STR},
)


def _kdf_corrupt(why: str) -> Exception:
    return rows.corrupt(rows.record_name("meta", "kdf"), why)


def _kdf_params(raw: str) -> dict[str, Any]:
    """The stored Argon2id parameters, bounded (a tampered row must not exhaust memory)."""
    return KDF_SHAPE.decode(raw, rows.record_name("meta", "kdf"))


class KeyringSource(MasterKeySource):
    """The OS keyring (Keychain, Secret Service, Windows Credential Locker) via `keyring`."""

    name = "keyring"
    SERVICE = "credwarden"

    def _username(self, ctx: KeyContext) -> str:
        return f"master-key:{ctx.settings.home}"

    def describe(self, ctx: KeyContext) -> str:
        return f"OS keyring entry {self.SERVICE}/{self._username(ctx)}"

    def _keyring(self) -> object:
        try:
            import keyring
        except ImportError:
            raise MasterKeyError(
                "the keyring master-key source needs the `keyring` package",
                hint="pip install 'credwarden[keyring]'",
            ) from None
        return keyring

    def exists(self, ctx: KeyContext) -> bool:
        kr = self._keyring()
        return kr.get_password(self.SERVICE, self._username(ctx)) is not None  # type: ignore[attr-defined]

    def load(self, ctx: KeyContext) -> bytes:
        kr = self._keyring()
        text = kr.get_password(self.SERVICE, self._username(ctx))  # type: ignore[attr-defined]
        if text is None:
            raise MasterKeyError(
                f"no master key in the {self.describe(ctx)}",
                hint="run `credwarden init` with this source",
            )
        return decode_key(str(text), source=self.describe(ctx))

    def create(self, ctx: KeyContext) -> bytes:
        kr = self._keyring()
        key = new_key()
        kr.set_password(self.SERVICE, self._username(ctx), encode_key(key))  # type: ignore[attr-defined]
        return key


BUILTIN: dict[str, type[MasterKeySource]] = {
    s.name: s for s in (EnvSource, FileSource, PassphraseSource, KeyringSource)
}


def load_plugin(name: str) -> MasterKeySource:
    """A source registered under the entry-point group (looked up only when asked for)."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, MasterKeySource)):
                raise MasterKeyError(
                    f"the master-key source plug-in {name!r} is not a MasterKeySource subclass"
                )
            return cls()
    known = sorted(set(BUILTIN) | {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})
    raise MasterKeyError(
        f"unknown master-key source {name!r}",
        hint=f"CREDWARDEN_MASTER_KEY_SOURCE must be one of: {', '.join(known)}",
    )


def select_source(settings: Settings) -> MasterKeySource:
    """Pick the source: explicit key, then key file, then named source, then the default file."""
    if settings.master_key:
        return EnvSource()
    if settings.master_key_file:
        return FileSource()
    name = settings.master_key_source
    if name:
        builtin = BUILTIN.get(name)
        return builtin() if builtin else load_plugin(name)
    return FileSource()
