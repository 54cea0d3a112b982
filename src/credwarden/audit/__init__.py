"""The audit log: one event per operation, HMAC-SHA-256 hash-chained, verified end to end."""

from .chain import AuditChain, AuditEvent, VerifyReport

__all__ = ["AuditChain", "AuditEvent", "VerifyReport"]
