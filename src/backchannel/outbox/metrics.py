"""Delivery metrics, on prometheus_client's default registry (served at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

DELIVERIES = Counter(
    "backchannel_deliveries",
    "Outbox delivery attempts and their outcomes, by kind (ping, push, push_error, ...) and "
    "result (attempted, succeeded, failed, retried).",
    ["kind", "result"],
)
DELIVERY_LATENCY = Histogram(
    "backchannel_delivery_latency_seconds",
    "Duration of one delivery attempt (the HTTP call), in seconds.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def count(kind: str, result: str) -> None:
    DELIVERIES.labels(kind=kind, result=result).inc()


def observe_latency(kind: str, seconds: float) -> None:
    DELIVERY_LATENCY.labels(kind=kind).observe(seconds)
