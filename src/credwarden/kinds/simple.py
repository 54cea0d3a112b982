"""The static kinds: api_key, basic, secret (one value) and env (a set of env vars)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import ClassVar

from ..address import Address
from ..errors import ValidationError
from .base import FieldSpec, Kind, check_env_name, check_single_line, env_stem


class ApiKey(Kind):
    name = "api_key"
    summary = "an API key sent as a header (Authorization: Bearer by default)"
    fields: ClassVar[tuple[FieldSpec, ...]] = (
        FieldSpec("api_key", help="the key"),
        FieldSpec(
            "env_var",
            secret=False,
            required=False,
            help="env var name for `run` (default SERVICE_NAME_API_KEY)",
        ),
        FieldSpec(
            "header", secret=False, required=False, help="header name (default Authorization)"
        ),
        FieldSpec(
            "scheme",
            secret=False,
            required=False,
            help="value prefix (default Bearer; '-' for the bare key)",
        ),
    )
    main_field = "api_key"

    def check(self, fields: dict[str, str]) -> None:
        check_single_line("api_key", fields["api_key"])
        if any(c.isspace() for c in fields["api_key"]):
            raise ValidationError(
                "field 'api_key' contains spaces",
                hint="API keys have no spaces; check what was pasted",
            )
        if "env_var" in fields:
            check_env_name(fields["env_var"], "env_var")

    def env_vars(self, address: Address, fields: Mapping[str, str]) -> dict[str, str]:
        return {fields.get("env_var") or env_stem(address, "API_KEY"): fields["api_key"]}

    def headers(self, fields: Mapping[str, str]) -> dict[str, str]:
        scheme = fields.get("scheme") or "Bearer"
        value = fields["api_key"] if scheme == "-" else f"{scheme} {fields['api_key']}"
        return {fields.get("header") or "Authorization": value}


class Basic(Kind):
    name = "basic"
    summary = "a username and password (HTTP Basic)"
    fields: ClassVar[tuple[FieldSpec, ...]] = (
        FieldSpec("username", secret=False),
        FieldSpec("password"),
        FieldSpec(
            "env_prefix",
            secret=False,
            required=False,
            help="prefix of the env vars for `run` (default SERVICE_NAME)",
        ),
    )
    main_field = "password"

    def check(self, fields: dict[str, str]) -> None:
        check_single_line("username", fields["username"])
        check_single_line("password", fields["password"])
        if ":" in fields["username"]:
            raise ValidationError(
                "field 'username' contains ':'", hint="HTTP Basic usernames cannot contain ':'"
            )
        if "env_prefix" in fields:
            check_env_name(fields["env_prefix"], "env_prefix")

    def env_vars(self, address: Address, fields: Mapping[str, str]) -> dict[str, str]:
        prefix = fields.get("env_prefix") or env_stem(address)
        return {f"{prefix}_USERNAME": fields["username"], f"{prefix}_PASSWORD": fields["password"]}

    def headers(self, fields: Mapping[str, str]) -> dict[str, str]:
        pair = f"{fields['username']}:{fields['password']}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


class SecretValue(Kind):
    name = "secret"
    summary = "one secret value with the env var name it is given as"
    fields: ClassVar[tuple[FieldSpec, ...]] = (
        FieldSpec("value"),
        FieldSpec(
            "env_var",
            secret=False,
            required=False,
            help="env var name for `run` (default: the name, upper-cased)",
        ),
    )
    main_field = "value"

    def check(self, fields: dict[str, str]) -> None:
        if "env_var" in fields:
            check_env_name(fields["env_var"], "env_var")

    def env_vars(self, address: Address, fields: Mapping[str, str]) -> dict[str, str]:
        name = fields.get("env_var") or env_stem(Address(address.env, "", address.name))
        return {name: fields["value"]}


class EnvSet(Kind):
    name = "env"
    summary = "a set of environment variables, every one secret"
    open_fields = True

    def env_vars(self, address: Address, fields: Mapping[str, str]) -> dict[str, str]:
        return dict(fields)
