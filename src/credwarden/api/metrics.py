"""Prometheus metrics of the server: operations by action and result, refreshes, latencies."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)
OPERATIONS = Counter(
    "credwarden_operations",
    "Audited operations by action and result (reads, uses, denials, ...)",
    ["action", "result"],
    registry=REGISTRY,
)
REFRESHES = Counter(
    "credwarden_refreshes", "OAuth refreshes by result", ["result"], registry=REGISTRY
)
LATENCY = Histogram(
    "credwarden_request_seconds",
    "API request latency by route",
    ["route"],
    registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)
_children: dict[tuple[str, str], Counter] = {}


def count(action: str, result: str) -> None:
    """The facade's event hook: one call per audited operation (cheap: children cached)."""
    child = _children.get((action, result))
    if child is None:
        child = _children[(action, result)] = OPERATIONS.labels(action, result)
    child.inc()
    if action == "refresh":
        REFRESHES.labels(result).inc()


def exposition() -> bytes:
    return generate_latest(REGISTRY)
