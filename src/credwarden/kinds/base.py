"""What a credential kind declares: its fields (and which are secret), validation, presentation."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import ClassVar, Final, NamedTuple

from ..address import Address
from ..errors import ValidationError

MAX_VALUE_BYTES: Final = 64 * 1024
MAX_FIELDS: Final = 256
ENV_NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_CONTROL_RE: Final = re.compile(r"[\x00-\x1f\x7f]")


class FieldSpec(NamedTuple):
    name: str
    secret: bool = True
    required: bool = True
    help: str = ""


def env_stem(address: Address, *parts: str) -> str:
    """An env var name from address parts: `prod/stripe/billing` -> `STRIPE_BILLING`."""
    raw = "_".join(p for p in (address.service, address.name, *parts) if p)
    name = re.sub(r"[^A-Za-z0-9]+", "_", raw).strip("_").upper()
    return name if not name[:1].isdigit() else "_" + name


def check_env_name(name: str, what: str) -> None:
    if not ENV_NAME_RE.match(name) or len(name) > 128:
        raise ValidationError(
            f"{what} {name[:64]!r} is not a valid environment variable name",
            hint="use letters, digits and '_', not starting with a digit, e.g. STRIPE_API_KEY",
        )


class Kind:
    """Base of every kind. Subclasses set the class variables and may override the hooks."""

    name: ClassVar[str]
    summary: ClassVar[str]
    fields: ClassVar[tuple[FieldSpec, ...]] = ()
    main_field: ClassVar[str | None] = None
    open_fields: ClassVar[bool] = False
    """When true, any env-var-shaped field name is allowed and every field is secret."""
    refreshable: ClassVar[bool] = False
    """Kinds that mint or refresh tokens (oauth2, service accounts) set this."""
    default_rotate_every: ClassVar[int | None] = None
    """A rotation policy (seconds) applied when `add` is given none."""
    needs_a_secret: ClassVar[bool] = False
    """One of several optional secret fields must be given: `add` prompts for the main one."""
    file_field: ClassVar[str | None] = None
    """The field `--from-file` fills (default: the main field)."""

    def derived_expiry(self, fields: Mapping[str, str]) -> str | None:
        """An expiry the material itself states (a certificate's notAfter), if any."""
        return None

    def spec(self, field: str) -> FieldSpec | None:
        for f in self.fields:
            if f.name == field:
                return f
        if self.open_fields:
            return FieldSpec(field, secret=True, required=False)
        return None

    def is_secret(self, field: str) -> bool:
        spec = self.spec(field)
        return spec is None or spec.secret

    def secret_fields(self) -> list[str]:
        return [f.name for f in self.fields if f.secret]

    def validate(self, fields: Mapping[str, str]) -> dict[str, str]:
        """Check a complete field set; return it normalised, or raise ValidationError."""
        if len(fields) > MAX_FIELDS:
            raise ValidationError(
                f"a credential has at most {MAX_FIELDS} fields",
                hint="split the values over several credentials",
            )
        out: dict[str, str] = {}
        for name, value in fields.items():
            spec = self.spec(name)
            if spec is None:
                allowed = ", ".join(f.name for f in self.fields)
                raise ValidationError(
                    f"kind {self.name} has no field {name[:64]!r}",
                    hint=f"its fields are: {allowed}",
                )
            if self.open_fields:
                check_env_name(name, "field name")
            if not isinstance(value, str):
                raise ValidationError(f"field {name!r} must be text", hint="pass values as strings")
            try:
                size = len(value.encode("utf-8"))
            except UnicodeEncodeError:
                raise ValidationError(
                    f"field {name!r} is not valid Unicode text (it holds a lone surrogate)",
                    hint="check how the value was decoded before it was passed in",
                ) from None
            if size > MAX_VALUE_BYTES:
                raise ValidationError(
                    f"field {name!r} is larger than 64 KiB",
                    hint="credwarden stores credentials, not files; keep values under 64 KiB",
                )
            if "\x00" in value:
                raise ValidationError(
                    f"field {name!r} contains a NUL character",
                    hint="check what was pasted or piped in",
                )
            out[name] = value
        for spec in self.fields:
            if spec.required and not out.get(spec.name):
                raise ValidationError(
                    f"kind {self.name} needs the field {spec.name!r}"
                    + (" (secret)" if spec.secret else ""),
                    hint=f"give it with --field {spec.name}=..."
                    + (" or let the prompt ask for it" if spec.secret else ""),
                )
        if self.open_fields and not out:
            raise ValidationError(
                f"kind {self.name} needs at least one field", hint="e.g. --field DATABASE_URL=..."
            )
        self.check(out)
        return out

    def check(self, fields: dict[str, str]) -> None:
        """Kind-specific checks of a complete field set; may normalise in place."""

    def env_vars(self, address: Address, fields: Mapping[str, str]) -> dict[str, str]:
        """The environment variables a workflow gets (for `run` and `export`)."""
        raise NotImplementedError

    def headers(self, fields: Mapping[str, str]) -> dict[str, str]:
        """The HTTP headers that authenticate with this credential."""
        raise ValidationError(
            f"a {self.name} credential has no HTTP headers",
            hint="headers come from api_key, basic and token kinds",
        )


def check_single_line(name: str, value: str) -> None:
    """Keys and passwords never hold line breaks or control characters: catch bad pastes."""
    if _CONTROL_RE.search(value):
        raise ValidationError(
            f"field {name!r} contains a line break or control character",
            hint="check what was pasted; `echo` adds a newline, use `printf '%s'`",
        )
