"""One exception tree for credwarden: each error has a stable code, an exit code and a safe message.

    CredwardenError                 exit 1  (code: error)
    ├── UsageError                  exit 2  (code: usage)
    │   ├── InvalidAddress                  (code: invalid_address)
    │   ├── ValidationError                 (code: invalid_input)
    │   │   └── UnknownEnvironment          (code: unknown_environment; HTTP 404)
    │   └── UnknownKind                     (code: unknown_kind)
    ├── MasterKeyError              exit 3  (code: master_key)
    ├── NotFound                    exit 4  (code: not_found)
    ├── PermissionDenied            exit 5  (code: permission_denied)
    │   ├── Unauthenticated                 (code: unauthenticated)
    │   └── RateLimited                     (code: rate_limited)
    ├── Conflict                    exit 6  (code: conflict)
    │   └── AlreadyExists                   (code: already_exists)
    ├── CredentialInvalid           exit 7  (code: credential_invalid)
    │   └── LockTimeout                     (code: lock_timeout)
    ├── AuditError                  exit 8  (code: audit_failed)
    ├── StoreError                  exit 1  (code: store)
    │   ├── SchemaTooNew                    (code: schema_too_new)
    │   └── StoreCorrupt                    (code: store_corrupt)
    └── CryptoError                 exit 1  (code: crypto)

Messages never contain secret values: they are shown to users, logged and
returned by the API. `hint` says how to fix the problem.
"""

from __future__ import annotations


class CredwardenError(Exception):
    """Base of every error credwarden raises on purpose."""

    code = "error"
    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def to_dict(self) -> dict[str, str | int | None]:
        return {
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "exit_code": self.exit_code,
        }


class UsageError(CredwardenError):
    code = "usage"
    exit_code = 2


class InvalidAddress(UsageError):
    code = "invalid_address"


class ValidationError(UsageError):
    code = "invalid_input"


class UnknownEnvironment(ValidationError):
    """An address or request names an environment the store does not have: a usage error on
    the command line, a 404 over HTTP (the environment is a resource that is not there)."""

    code = "unknown_environment"


class UnknownKind(UsageError):
    code = "unknown_kind"


class MasterKeyError(CredwardenError):
    code = "master_key"
    exit_code = 3


class NotFound(CredwardenError):
    code = "not_found"
    exit_code = 4


class PermissionDenied(CredwardenError):
    code = "permission_denied"
    exit_code = 5


class Unauthenticated(PermissionDenied):
    """No token, or one that is unknown, expired or revoked (HTTP 401)."""

    code = "unauthenticated"


class RateLimited(PermissionDenied):
    """Too many failed authentications from one source (HTTP 429)."""

    code = "rate_limited"


class Conflict(CredwardenError):
    code = "conflict"
    exit_code = 6


class AlreadyExists(Conflict):
    code = "already_exists"


class CredentialInvalid(CredwardenError):
    code = "credential_invalid"
    exit_code = 7


class LockTimeout(CredentialInvalid):
    """Someone else holds a credential's refresh lock for too long: refusing beats racing."""

    code = "lock_timeout"


class AuditError(CredwardenError):
    code = "audit_failed"
    exit_code = 8


class StoreError(CredwardenError):
    code = "store"


class SchemaTooNew(StoreError):
    code = "schema_too_new"


class StoreCorrupt(StoreError):
    """A row that does not decode (edited, truncated, bit-flipped): named, never returned."""

    code = "store_corrupt"


class CryptoError(CredwardenError):
    code = "crypto"
