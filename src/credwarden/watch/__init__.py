"""Watching use: usage derived from the audit stream (later: anomalies and alerts)."""
