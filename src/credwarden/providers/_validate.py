"""Checks provider entries against schema.json, then what a JSON Schema cannot say.

Every refusal is a `ValidationError` whose message names the source (a file name)
and the JSON path of the bad field, e.g.
`acme.yaml: providers.acme.oauth2.token_url: 'ftp://x' does not match '^https?://'`.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any, Final
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator
from jsonschema import ValidationError as SchemaError

from ..errors import ValidationError

SCHEMA_PATH: Final = os.path.join(os.path.dirname(__file__), "schema.json")
SLUG_RE: Final = re.compile(r"[a-z0-9][a-z0-9-]*\Z")
PLACEHOLDER_RE: Final = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
LOOPBACK_HOSTS: Final = frozenset({"localhost", "127.0.0.1", "::1"})
RUNTIME_PLACEHOLDERS: Final = frozenset(
    {
        "access_token",
        "api_key",
        "token",
        "refresh_token",
        "client_id",
        "client_secret",
        "client_basic",
        "username",
        "password",
        "basic",
    }
)
"""Filled from the credential at request time; allowed only in `test` and `revoke`."""

_MAX_SHOWN: Final = 80


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    with open(SCHEMA_PATH, encoding="utf-8") as f:
        loaded: dict[str, Any] = json.load(f)
    return loaded


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(schema())


def validate_entries(document: object, source: str, *, single: bool = False) -> dict[str, Any]:
    """Validate a catalog mapping (slug -> entry); return it as a plain dict.

    `single` requires exactly one provider, as in a user file.
    """
    if not isinstance(document, Mapping):
        raise ValidationError(
            f"{source}: providers: expected a mapping of slug to provider, got {_kind(document)}",
            hint="write `<slug>:` on the first line and the provider's fields indented under it",
        )
    if single and len(document) != 1:
        raise ValidationError(
            f"{source}: providers: a provider file holds exactly one provider,"
            f" found {len(document)}",
            hint="put each provider in its own <slug>.yaml file",
        )
    problems = list(_non_string_keys(document, []))
    problems = problems or _schema_problems(document)
    if not problems:
        for slug, entry in document.items():
            problems.extend(_semantic_problems(str(slug), entry))
    if problems:
        path, message, hint = problems[0]
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise ValidationError(f"{source}: {path}: {message}{more}", hint=hint)
    return dict(document)


def check_slug(slug: object) -> str:
    if not isinstance(slug, str) or not SLUG_RE.match(slug) or len(slug) > 64:
        raise ValidationError(
            f"provider slug {_show(slug)} is not valid",
            hint="use lower-case letters, digits and '-', starting with a letter or digit,"
            " e.g. acme-crm",
        )
    return slug


def check_url(value: str, *, fragment_ok: bool = False) -> str | None:
    """Why `value` is not an acceptable endpoint URL, or None when it is."""
    if any(ch.isspace() for ch in value) or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return "must not contain whitespace or control characters"
    try:
        parts = urlsplit(value)
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("https", "http") or not parts.netloc:
        return "must be an absolute https URL"
    if "@" in parts.netloc:
        return "must not carry credentials (user@host)"
    if parts.fragment and not fragment_ok:
        return "must not have a #fragment"
    if parts.scheme == "http" and (parts.hostname or "") not in LOOPBACK_HOSTS:
        return "must use https (plain http only for localhost, 127.0.0.1 or [::1])"
    return None


# -- schema errors ---------------------------------------------------------------------------


def _non_string_keys(node: object, path: list[str | int]) -> Iterator[tuple[str, str, str]]:
    """YAML allows keys like `123:` or `true:`; the catalog's keys are all strings."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            if not isinstance(key, str):
                yield (
                    _render_path([*path, str(key)]),
                    f"key {key!r} is not a string",
                    "quote the key in YAML, e.g. '123':",
                )
            else:
                yield from _non_string_keys(value, [*path, key])
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _non_string_keys(value, [*path, i])


def _schema_problems(document: Mapping[Any, Any]) -> list[tuple[str, str, str]]:
    by_path: dict[str, tuple[str, str, str]] = {}
    for error in _validator().iter_errors(document):
        path, message, hint = _describe(_most_specific(error))
        known = by_path.get(path)
        if known is None or len(message) > len(known[1]):
            by_path[path] = (path, message, hint)  # one problem per field, the most explicit
    return [by_path[path] for path in sorted(by_path)]


def _most_specific(error: SchemaError) -> SchemaError:
    """For oneOf/anyOf failures, the branch error that went deepest (the user's likely intent)."""
    while error.context:
        error = max(
            error.context,
            key=lambda e: (len(e.absolute_path), e.validator != "type", -len(e.context or ())),
        )
    return error


def _describe(error: SchemaError) -> tuple[str, str, str]:
    parts: list[str | int] = list(error.absolute_path)
    schema_path = list(error.absolute_schema_path)
    validator = error.validator
    described = error.schema.get("description") if isinstance(error.schema, Mapping) else None
    default_hint = (
        str(described)
        if described
        else "see credwarden/providers/schema.json for the fields and their formats"
    )

    if "propertyNames" in schema_path:
        name = error.instance
        if not parts:
            return (
                _render_path([str(name)]),
                f"{_show(name)} is not a valid provider slug",
                "use lower-case letters, digits and '-', e.g. acme-crm",
            )
        if "not" in schema_path:
            return (
                _render_path([*parts, str(name)]),
                "is not allowed here",
                "a provider file is readable data: never put secrets (client_secret, tokens) in it",
            )
        return (
            _render_path([*parts, str(name)]),
            f"{_show(name)} is not an allowed name",
            default_hint,
        )

    if validator == "additionalProperties" and isinstance(error.instance, Mapping):
        sub_schema = error.schema if isinstance(error.schema, Mapping) else {}
        allowed = sorted(sub_schema.get("properties", {}))
        extras = sorted(str(k) for k in error.instance if k not in allowed)
        unknown = extras[0] if extras else "?"
        close = difflib.get_close_matches(unknown, allowed, n=1)
        hint = (
            f"did you mean {close[0]!r}?"
            if close
            else f"fields allowed here: {', '.join(allowed)}"
            if allowed
            else default_hint
        )
        return (_render_path([*parts, unknown]), "unknown field", hint)

    if validator == "required":
        match = re.match(r"'([^']+)' is a required property", error.message)
        missing = match.group(1) if match else str(error.validator_value)
        mode = _mode_requiring(schema_path)
        why = f" (auth lists {mode!r})" if mode else ""
        return (
            _render_path([*parts, missing]),
            f"is required{why}",
            f"add {missing!r}; {default_hint}",
        )

    if validator == "enum":
        options = error.validator_value if isinstance(error.validator_value, list) else []
        choices = ", ".join(repr(c) for c in options)
        return (
            _render_path(parts),
            f"{_show(error.instance)} is not one of {choices}",
            f"use one of {choices}",
        )

    if validator == "pattern":
        pattern = str(error.validator_value)
        shown = pattern if len(pattern) <= 40 else "the expected format"
        return (
            _render_path(parts),
            f"{_show(error.instance)} does not match {shown!r}"
            if shown == pattern
            else f"{_show(error.instance)} does not match {shown}",
            default_hint,
        )

    if validator == "type":
        hint = default_hint
        if error.validator_value == "string" and not isinstance(error.instance, (dict, list)):
            hint = "quote the value in YAML so that it stays text, e.g. '2025-01-15' or 'on'"
        return (
            _render_path(parts),
            f"{_show(error.instance)} is not of type {error.validator_value!r}",
            hint,
        )

    if validator == "not" and "api_key" in parts:
        return (
            _render_path(parts),
            "set basic_username or basic_password, not both",
            "basic_username: the key is the password; basic_password: the key is the username",
        )

    message = error.message
    if len(message) > 200:
        message = message[:200] + "…"
    return (_render_path(parts), message, default_hint)


def _mode_requiring(schema_path: Sequence[object]) -> str | None:
    """The auth mode whose `if/then` made a field required, from the schema path."""
    try:
        index = schema_path.index("allOf")
        branch = schema_path[index + 1]
    except (ValueError, IndexError):
        return None
    if "then" not in schema_path or not isinstance(branch, int):
        return None
    try:
        rule = schema()["$defs"]["provider"]["allOf"][branch]
        const = rule["if"]["properties"]["auth"]["contains"]["const"]
    except (KeyError, IndexError, TypeError):
        return None
    return str(const)


# -- what the schema cannot say ---------------------------------------------------------------


def _semantic_problems(slug: str, entry: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    base: list[str | int] = [slug]
    template_vars = [v["name"] for v in entry.get("template_vars", ())]
    declared = set(template_vars)
    for i, name in enumerate(template_vars):
        if template_vars.index(name) != i:
            yield (
                _render_path([*base, "template_vars", i, "name"]),
                f"{name!r} is declared twice",
                "give each template var one entry",
            )
        if name in RUNTIME_PLACEHOLDERS:
            yield (
                _render_path([*base, "template_vars", i, "name"]),
                f"{name!r} is reserved for credential values",
                f"pick another name; reserved: {', '.join(sorted(RUNTIME_PLACEHOLDERS))}",
            )
    extra_names = set()
    api_key = entry.get("api_key") or {}
    for i, field in enumerate(api_key.get("extra_fields", ())):
        name = field["name"]
        if name in RUNTIME_PLACEHOLDERS or name in declared or name in extra_names:
            yield (
                _render_path([*base, "api_key", "extra_fields", i, "name"]),
                f"{name!r} clashes with another placeholder",
                f"pick a name other than {', '.join(sorted(RUNTIME_PLACEHOLDERS | declared))}",
            )
        extra_names.add(name)

    yield from _regex_problems(base, entry)

    modes = set(entry.get("auth", ()))
    request_names = declared | RUNTIME_PLACEHOLDERS | extra_names
    for path, key, value in _strings(entry, base):
        is_url = key in ("docs", "issuer", "url") or (isinstance(key, str) and key.endswith("_url"))
        section = path[1] if len(path) > 1 else None
        in_request = section in ("test", "revoke")
        in_params = section == "oauth2" and path[2] in ("authorize_params", "token_params")
        if not (is_url or in_request or in_params):
            continue  # prose (quirks, labels) and patterns may contain braces freely
        allowed = request_names if in_request else declared
        for name in PLACEHOLDER_RE.findall(value):
            if name not in allowed:
                hint = (
                    f"declare it under template_vars, or use one of {', '.join(sorted(allowed))}"
                    if in_request
                    else "declare it under template_vars (name, description, pattern)"
                )
                yield (_render_path(path), f"placeholder {{{name}}} is not declared", hint)
        if is_url:
            why = check_url(value, fragment_ok=key == "docs")
            if why:
                yield (
                    _render_path(path),
                    f"{_show(value)} {why}",
                    "use the service's https endpoint",
                )

    for block in ("test", "revoke"):
        specs = entry.get(block)
        items = specs if isinstance(specs, list) else [specs] if specs else []
        for i, spec in enumerate(items):
            for mode in spec.get("for", ()):
                if mode not in modes:
                    where: list[str | int] = [
                        *base,
                        block,
                        *([i] if isinstance(specs, list) else []),
                        "for",
                    ]
                    yield (
                        _render_path(where),
                        f"{mode!r} is not one of this provider's auth modes",
                        f"auth lists: {', '.join(entry['auth'])}",
                    )


def _regex_problems(
    base: list[str | int], entry: Mapping[str, Any]
) -> Iterator[tuple[str, str, str]]:
    candidates: list[tuple[list[str | int], object]] = []
    api_key = entry.get("api_key") or {}
    candidates.append(([*base, "api_key", "pattern"], api_key.get("pattern")))
    for i, field in enumerate(api_key.get("extra_fields", ())):
        candidates.append(([*base, "api_key", "extra_fields", i, "pattern"], field.get("pattern")))
    basic = entry.get("basic") or {}
    for key in ("username_pattern", "password_pattern"):
        candidates.append(([*base, "basic", key], basic.get(key)))
    for i, var in enumerate(entry.get("template_vars", ())):
        candidates.append(([*base, "template_vars", i, "pattern"], var.get("pattern")))
    for path, pattern in candidates:
        if isinstance(pattern, str):
            try:
                re.compile(pattern)
            except re.error as exc:
                yield (_render_path(path), f"invalid regular expression: {exc}", "fix the pattern")


def _strings(
    node: object, path: list[str | int], key: str | int | None = None
) -> Iterator[tuple[list[str | int], str | int | None, str]]:
    if isinstance(node, str):
        yield path, key, node
    elif isinstance(node, Mapping):
        for k, v in node.items():
            yield from _strings(v, [*path, str(k)], str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _strings(v, [*path, i], key)


# -- formatting -------------------------------------------------------------------------------


def _render_path(parts: Iterable[str | int]) -> str:
    out = "providers"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


def _kind(value: object) -> str:
    if value is None:
        return "an empty document"
    return {
        list: "a list",
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "a boolean",
    }.get(type(value), type(value).__name__)
