"""credwarden: keep integration credentials encrypted, working, least-privilege and audited.

from credwarden import Warden
with Warden.open() as w:
    key = w.get("prod/stripe/billing").reveal()
"""

from __future__ import annotations

from .errors import (
    AuditError,
    Conflict,
    CredentialInvalid,
    CredwardenError,
    MasterKeyError,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from .secret import Secret
from .settings import VERSION
from .warden import Warden

__all__ = [
    "AuditError",
    "Conflict",
    "CredentialInvalid",
    "CredwardenError",
    "MasterKeyError",
    "NotFound",
    "PermissionDenied",
    "Secret",
    "ValidationError",
    "Warden",
]
__version__ = VERSION
