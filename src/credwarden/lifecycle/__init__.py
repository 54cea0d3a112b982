"""Lifecycle: health, expiry and rotation state of credentials."""
