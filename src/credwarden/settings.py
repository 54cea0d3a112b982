"""Settings from the environment (names fixed by CLI.md), resolved once per process."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import NamedTuple

VERSION = "0.1.0"
"""credwarden's version (pyproject.toml says the same; `credwarden.__version__`)."""

DEFAULT_ENVIRONMENTS = ("dev", "staging", "prod")


def default_home(environ: Mapping[str, str]) -> str:
    """The platform's user data dir, by hand: platformdirs and pathlib cost a cold `get` much."""
    home = os.path.expanduser("~")
    if sys.platform == "win32":
        base = environ.get("APPDATA") or os.path.join(home, "AppData", "Roaming")
        return os.path.join(base, "credwarden")
    if sys.platform == "darwin":
        return os.path.join(home, "Library", "Application Support", "credwarden")
    base = environ.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
    return os.path.join(base, "credwarden")


class Settings(NamedTuple):
    """Paths are plain strings: pathlib is not imported on the read path."""

    home: str
    database_url: str
    master_key: str | None
    master_key_file: str | None
    master_key_source: str | None
    passphrase: str | None
    default_env: str

    def __repr__(self) -> str:
        return (
            f"Settings(home={self.home!r}, database_url={redact_url(self.database_url)!r},"
            f" master_key={'<set>' if self.master_key else None},"
            f" master_key_file={self.master_key_file!r},"
            f" master_key_source={self.master_key_source!r}, default_env={self.default_env!r})"
        )

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        home: str | os.PathLike[str] | None = None,
        database_url: str | None = None,
    ) -> Settings:
        env = os.environ if environ is None else environ
        home_path = os.path.abspath(
            os.path.expanduser(os.fspath(home or env.get("CREDWARDEN_HOME") or default_home(env)))
        )
        url = (
            database_url
            or env.get("CREDWARDEN_DATABASE_URL")
            or (f"sqlite:///{os.path.join(home_path, 'credwarden.db')}")
        )
        key_file = env.get("CREDWARDEN_MASTER_KEY_FILE")
        return cls(
            home=home_path,
            database_url=url,
            master_key=env.get("CREDWARDEN_MASTER_KEY") or None,
            master_key_file=os.path.abspath(os.path.expanduser(key_file)) if key_file else None,
            master_key_source=env.get("CREDWARDEN_MASTER_KEY_SOURCE") or None,
            passphrase=env.get("CREDWARDEN_PASSPHRASE") or None,
            default_env=env.get("CREDWARDEN_ENV") or "dev",
        )


def redact_url(url: str) -> str:
    """A database URL with any password replaced, fit for messages."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else url


def is_loopback_host(host: str) -> bool:
    """Whether a host name or address stays on this machine (plain http is fine there)."""
    if host == "localhost":
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
