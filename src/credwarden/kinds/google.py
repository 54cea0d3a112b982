"""`google_service_account`: a downloaded Google service-account JSON key, validated on the way in.

The whole key file is the one secret field; the identifying parts (client email,
project, key id, token URI) are copied out as plain fields so `show` needs no
decryption and no key material ever appears there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar, Final

from ..address import Address
from ..errors import ValidationError
from .base import FieldSpec, Kind, env_stem

EMAIL_RE: Final = re.compile(
    r"[a-z0-9][a-z0-9-]{0,62}@[a-z0-9][a-z0-9-]*\.(iam|developer)\.gserviceaccount\.com\Z"
    r"|[a-z0-9-]+@appspot\.gserviceaccount\.com\Z"
)
KEY_ID_RE: Final = re.compile(r"[0-9a-f]{40}\Z")
DEFAULT_TOKEN_URI: Final = "https://oauth2.googleapis.com/token"  # noqa: S105 - a public URL
BROAD_SCOPES: Final = frozenset({"https://www.googleapis.com/auth/cloud-platform"})
PLAIN: Final = ("client_email", "project_id", "private_key_id", "token_uri")


def _bad(field: str, what: str, hint: str | None = None) -> ValidationError:
    return ValidationError(
        f"the service-account key's {field} {what}",
        hint=hint or "download a new JSON key: IAM & Admin > Service accounts > Keys > Add key",
    )


def parse_key(text: str) -> dict[str, Any]:
    """Parse and check a service-account key file; errors name the exact field."""
    try:
        info = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"the service-account key is not valid JSON (line {exc.lineno}, column {exc.colno})",
            hint="pass the JSON file Google gave you, unchanged (--from-file key.json)",
        ) from None
    if not isinstance(info, dict):
        raise ValidationError("the service-account key must be a JSON object")
    if "installed" in info or "web" in info:
        raise ValidationError(
            "this is an OAuth client file (client_secret_*.json), not a service-account key",
            hint="store it with --kind oauth2_client, or download a service-account key",
        )
    if info.get("type") != "service_account":
        raise _bad("type", f"is {str(info.get('type'))[:40]!r}, not 'service_account'")
    for name in ("project_id", "client_email", "private_key_id", "private_key"):
        if not isinstance(info.get(name), str) or not info[name]:
            raise _bad(name, "is missing")
    if not EMAIL_RE.match(info["client_email"]):
        raise _bad("client_email", "is not a service-account address (…@….iam.gserviceaccount.com)")
    if not KEY_ID_RE.match(info["private_key_id"]):
        raise _bad("private_key_id", "is not 40 hexadecimal characters")
    token_uri = info.get("token_uri") or DEFAULT_TOKEN_URI
    if not isinstance(token_uri, str) or not token_uri.startswith(
        ("https://", "http://127.0.0.1", "http://localhost")
    ):
        raise _bad("token_uri", "must be an https URL")
    _check_private_key(info["private_key"])
    return info


def _check_private_key(pem: str) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise _bad(
            "private_key", "is not a readable PEM private key (truncated or corrupted?)"
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise _bad("private_key", "is not an RSA key")


class GoogleServiceAccount(Kind):
    name = "google_service_account"
    summary = "a Google service-account JSON key; mints access tokens for scopes"
    fields: ClassVar[tuple[FieldSpec, ...]] = (
        FieldSpec("key_json", help="the downloaded key file (--from-file key.json)"),
        FieldSpec("client_email", secret=False, required=False),
        FieldSpec("project_id", secret=False, required=False),
        FieldSpec("private_key_id", secret=False, required=False),
        FieldSpec("token_uri", secret=False, required=False),
    )
    main_field = "key_json"
    refreshable = True
    default_rotate_every: ClassVar[int | None] = 90 * 86400  # Google's advice for its keys

    def check(self, fields: dict[str, str]) -> None:
        info = parse_key(fields["key_json"])
        for name in PLAIN:
            fields[name] = str(info.get(name) or DEFAULT_TOKEN_URI)

    def env_vars(self, address: Address, fields: Mapping[str, str]) -> dict[str, str]:
        return {env_stem(address, "SERVICE_ACCOUNT_JSON"): fields["key_json"]}
