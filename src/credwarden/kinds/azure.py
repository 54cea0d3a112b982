"""`azure_service_principal`: an Entra app's tenant, client id and a client secret or a
certificate (PEM with its private key; the thumbprint and expiry are read from it)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import ClassVar, Final

from ..address import Address
from ..errors import ValidationError
from ..timeutil import iso
from .base import FieldSpec, Kind, check_single_line, env_stem

GUID_RE: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z"
)
DOMAIN_RE: Final = re.compile(r"([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\Z")
DEFAULT_AUTHORITY: Final = "https://login.microsoftonline.com"


def read_certificate(pem: str) -> tuple[str, str, str]:
    """(thumbprint SHA-1 hex, notAfter ISO, private key PEM) of a PEM holding a certificate
    and its private key; refuses a missing key, a key of another certificate, an expired one."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    hint = "give one PEM file with the certificate and its private key (e.g. cat cert.pem key.pem)"
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise ValidationError(
            "the certificate is not a readable PEM certificate", hint=hint
        ) from None
    match = re.search(
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", pem, re.S
    )
    if match is None:
        raise ValidationError("the certificate PEM has no private key", hint=hint)
    try:
        key = load_pem_private_key(match.group(0).encode(), password=None)
    except (ValueError, TypeError):
        raise ValidationError(
            "the certificate's private key is not readable (encrypted or corrupted?)", hint=hint
        ) from None
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, pub) != cert.public_key().public_bytes(der, pub):
        raise ValidationError("the private key does not belong to the certificate", hint=hint)
    not_after = cert.not_valid_after_utc
    if not_after <= datetime.now(UTC):
        raise ValidationError(
            f"the certificate expired on {not_after.date()}",
            hint="upload a new certificate to the app registration and store that one",
        )
    thumbprint = cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - Entra's x5t
    return thumbprint, iso(not_after), match.group(0)


class AzureServicePrincipal(Kind):
    name = "azure_service_principal"
    summary = "a Microsoft Entra app: tenant, client id, client secret or certificate"
    fields: ClassVar[tuple[FieldSpec, ...]] = (
        FieldSpec("tenant_id", secret=False, help="tenant GUID or verified domain"),
        FieldSpec("client_id", secret=False, help="application (client) id, a GUID"),
        FieldSpec("client_secret", required=False),
        FieldSpec("certificate", required=False, help="PEM: certificate + private key"),
        FieldSpec(
            "authority_host",
            secret=False,
            required=False,
            help=f"default {DEFAULT_AUTHORITY} (sovereign clouds differ)",
        ),
        FieldSpec("thumbprint", secret=False, required=False, help="read from the certificate"),
        FieldSpec("cert_not_after", secret=False, required=False),
    )
    main_field = "client_secret"
    file_field = "certificate"
    needs_a_secret = True
    refreshable = True

    def check(self, fields: dict[str, str]) -> None:
        tenant = fields["tenant_id"]
        if not (GUID_RE.match(tenant) or DOMAIN_RE.match(tenant.lower())):
            raise ValidationError(
                f"tenant_id {tenant[:60]!r} is neither a GUID nor a domain",
                hint="Entra admin center > Overview > Tenant ID, e.g."
                " 72f988bf-86f1-41af-91ab-2d7cd011db47 or contoso.onmicrosoft.com",
            )
        if not GUID_RE.match(fields["client_id"]):
            raise ValidationError(
                f"client_id {fields['client_id'][:60]!r} is not a GUID",
                hint="App registrations > your app > Application (client) ID",
            )
        has_secret, has_cert = bool(fields.get("client_secret")), bool(fields.get("certificate"))
        if has_secret == has_cert:
            raise ValidationError(
                "give either a client_secret or a certificate (not both, not neither)",
                hint="a secret is prompted for; a certificate comes with --from-file sp.pem",
            )
        if has_secret:
            check_single_line("client_secret", fields["client_secret"])
            fields.pop("thumbprint", None)
            fields.pop("cert_not_after", None)
        else:
            thumbprint, not_after, _ = read_certificate(fields["certificate"])
            fields["thumbprint"], fields["cert_not_after"] = thumbprint, not_after
        host = fields.get("authority_host")
        if host and not host.startswith("https://"):
            raise ValidationError(
                "authority_host must be an https URL", hint=f"e.g. {DEFAULT_AUTHORITY}"
            )

    def derived_expiry(self, fields: Mapping[str, str]) -> str | None:
        return fields.get("cert_not_after")

    def env_vars(self, address: Address, fields: Mapping[str, str]) -> dict[str, str]:
        out = {"AZURE_TENANT_ID": fields["tenant_id"], "AZURE_CLIENT_ID": fields["client_id"]}
        if fields.get("client_secret"):
            out["AZURE_CLIENT_SECRET"] = fields["client_secret"]
        else:
            out[env_stem(address, "CERTIFICATE_PEM")] = fields["certificate"]
        return out
