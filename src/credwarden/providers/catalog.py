"""Loading the catalog: the built-in catalog.yaml plus the user's CREDWARDEN_HOME/providers/*.yaml.

A user file holds one provider (`<slug>: {...}`) and replaces a built-in one of the
same slug. Every entry is validated; a bad file is refused, naming the file and
the path of the bad field.
"""

from __future__ import annotations

import builtins
import contextlib
import difflib
import os
import tempfile
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any, Final

import yaml

from ..errors import AlreadyExists, NotFound, ValidationError
from ..files import read_user_file
from ..secret import Secret
from ..settings import default_home
from ._validate import check_slug, validate_entries
from .model import Provider, key_matches

BUILTIN_PATH: Final = os.path.join(os.path.dirname(__file__), "catalog.yaml")
USER_DIR: Final = "providers"
MAX_USER_FILE_BYTES: Final = 256 * 1024
_SUFFIXES: Final = (".yaml", ".yml")
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Catalog:
    """The providers known to this installation, by slug."""

    __slots__ = ("_providers",)

    def __init__(self, providers: Mapping[str, Provider]) -> None:
        self._providers = dict(sorted(providers.items()))

    def __repr__(self) -> str:
        user = sum(1 for p in self._providers.values() if p.source != "built-in")
        return f"Catalog({len(self._providers)} providers, {user} from user files)"

    def __len__(self) -> int:
        return len(self._providers)

    def __contains__(self, slug: object) -> bool:
        return slug in self._providers

    def __iter__(self) -> Iterator[Provider]:
        return iter(self._providers.values())

    def get(self, slug: str) -> Provider:
        provider = self._providers.get(slug)
        if provider is None:
            raise NotFound(f"no provider {slug!r} in the catalog", hint=self._suggest(slug))
        return provider

    def list(self) -> builtins.list[Provider]:
        """All providers, sorted by slug."""
        return builtins.list(self._providers.values())

    def slugs(self) -> builtins.list[str]:
        return builtins.list(self._providers)

    def match_key(self, value: str | Secret) -> builtins.list[Provider]:
        """Providers whose documented API key format `value` has (to guess a key's service)."""
        return [p for p in self._providers.values() if key_matches(p, value)]

    def _suggest(self, slug: str) -> str:
        wanted = slug.lower().strip()
        close = difflib.get_close_matches(wanted, self._providers, n=3, cutoff=0.6)
        for provider in self._providers.values():
            if wanted and wanted in provider.name.lower() and provider.slug not in close:
                close.append(provider.slug)
        if close:
            return "did you mean " + ", ".join(repr(s) for s in close[:3]) + "?"
        return (
            f"add it as <CREDWARDEN_HOME>/{USER_DIR}/{wanted or '<slug>'}.yaml,"
            " or import its OIDC discovery document (providers add --discovery)"
        )


def load_catalog(home: str | os.PathLike[str] | None = None) -> Catalog:
    """The built-in catalog with the user's provider files of `home` (default CREDWARDEN_HOME)."""
    providers = dict(_builtin_providers())
    origin: dict[str, str] = {}
    for path in _user_files(_resolve_home(home)):
        slug, provider = _load_user_file(path)
        if slug in origin:
            raise ValidationError(
                f"{os.path.basename(path)}: providers.{slug}: already defined in {origin[slug]}",
                hint=f"keep one file for {slug!r}: delete or rename {path}",
            )
        origin[slug] = os.path.basename(path)
        providers[slug] = provider
    return Catalog(providers)


def validate_entry(slug: str, entry: Mapping[str, Any], *, source: str | None = None) -> None:
    """Raise `ValidationError` if `entry` is not a valid provider (checks the slug too)."""
    validate_entries({slug: entry}, source or f"{slug}.yaml", single=True)


def save_user_provider(
    home: str | os.PathLike[str] | None,
    slug: str,
    entry: Mapping[str, Any],
    *,
    replace: bool = False,
) -> str:
    """Validate `entry` and write it atomically to <home>/providers/<slug>.yaml; return the path.

    An existing file for the slug is replaced only with `replace=True`.
    """
    check_slug(slug)
    validate_entry(slug, entry)
    directory = os.path.join(_resolve_home(home), USER_DIR)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    target = os.path.join(directory, slug + ".yaml")
    other = os.path.join(directory, slug + ".yml")
    if os.path.exists(other):
        raise AlreadyExists(
            f"provider {slug!r} is already defined in {other}",
            hint="edit that file, or delete it and add the provider again",
        )
    if os.path.exists(target) and not replace:
        raise AlreadyExists(
            f"provider {slug!r} is already defined in {target}",
            hint="replace it explicitly (replace=True / --replace), or pick another slug",
        )
    text = yaml.safe_dump(
        {slug: _plain_data(entry)}, sort_keys=False, allow_unicode=True, default_flow_style=False
    )
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{slug}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)
    return target


# -- internals --------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _builtin_providers() -> dict[str, Provider]:
    with open(BUILTIN_PATH, "rb") as f:
        document = yaml.load(f, Loader=_Loader)  # noqa: S506 - a safe loader (C or pure Python)
    entries = validate_entries(document, "catalog.yaml")
    return {slug: Provider(slug, entry) for slug, entry in entries.items()}


def _resolve_home(home: str | os.PathLike[str] | None) -> str:
    if home is None:
        home = os.environ.get("CREDWARDEN_HOME") or default_home(os.environ)
    return os.path.abspath(os.path.expanduser(os.fspath(home)))


def _user_files(home: str) -> builtins.list[str]:
    directory = os.path.join(home, USER_DIR)
    if not os.path.exists(directory):
        return []
    if not os.path.isdir(directory):
        raise ValidationError(
            f"{directory} is not a directory",
            hint="it should hold one <slug>.yaml file per user-defined provider",
        )
    names = sorted(
        n for n in os.listdir(directory) if n.endswith(_SUFFIXES) and not n.startswith(".")
    )
    return [os.path.join(directory, n) for n in names]


def _load_user_file(path: str) -> tuple[str, Provider]:
    name = os.path.basename(path)
    try:
        size = os.path.getsize(path)
        if size > MAX_USER_FILE_BYTES:
            raise ValidationError(
                f"{name}: file is too large ({size} bytes)",
                hint=f"a provider file holds one provider; the limit is {MAX_USER_FILE_BYTES}"
                " bytes",
            )
        data = read_user_file(path, limit=MAX_USER_FILE_BYTES, what="provider file")
        document = yaml.load(data, Loader=_Loader)  # noqa: S506 - a safe loader
    except RecursionError:
        raise ValidationError(f"{name}: nested too deeply", hint=f"check {path}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise ValidationError(
            f"{name}: not valid YAML: {problem}{where}", hint=f"fix the YAML syntax in {path}"
        ) from None
    except OSError as exc:
        raise ValidationError(
            f"{name}: cannot be read: {exc.strerror}", hint=f"check {path}"
        ) from None
    try:
        entries = validate_entries(document, name, single=True)
    except ValidationError as exc:
        raise ValidationError(exc.message, hint=f"{exc.hint} (in {path})") from None
    except RecursionError:
        raise ValidationError(f"{name}: nested too deeply", hint=f"check {path}") from None
    ((slug, entry),) = entries.items()
    return str(slug), Provider(str(slug), entry, source=path)


def _plain_data(value: object) -> object:
    """Mappings and sequences as dicts and lists, so that yaml.safe_dump accepts them."""
    if isinstance(value, Mapping):
        return {str(k): _plain_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_data(v) for v in value]
    return value


def _fsync_dir(directory: str) -> None:
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
