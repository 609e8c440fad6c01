"""Prometheus metrics: ``GET /metrics`` in the text exposition format.

HTTP requests are counted by route template (never the raw path, whose values are
unbounded) and status, with a duration histogram; the pending-requests gauge is read from
storage at scrape time, at most every few seconds; the long-poll gauge counts the polls
this process is holding. The default registry is exposed, so counters other modules
register there (the outbox's delivery metrics) appear too.

Each process has its own registry: with several server workers, a scrape reports the worker
that answered it. Run one worker per container (scale with containers) to scrape them all.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from prometheus_client import (
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from backchannel.protocol.events import EventBus, request_topic
from backchannel.protocol.model import RequestState
from backchannel.protocol.provider import Provider
from backchannel.web.adapter import ProviderSlot

METRICS_PATH = "/metrics"
# The classic text format every Prometheus version reads (our names need no UTF-8 escaping).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
UNMATCHED = "unmatched"
PENDING_REFRESH_SECONDS = 5.0
PENDING_COUNT_LIMIT = 10_000

HTTP_REQUESTS = Counter(
    "backchannel_http_requests",
    "HTTP requests answered, by route template and status code.",
    ["endpoint", "status"],
)
HTTP_DURATION = Histogram(
    "backchannel_http_request_duration_seconds",
    "Time to answer an HTTP request (long polls included), by route template.",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
PENDING_REQUESTS = Gauge(
    "backchannel_pending_requests",
    f"Pending, unexpired CIBA requests (counted up to {PENDING_COUNT_LIMIT}).",
)
LONG_POLL_WAITERS = Gauge(
    "backchannel_long_poll_waiters", "Token requests this process is holding (long polling)."
)


_series: dict[tuple[str, int], tuple[Counter, Histogram]] = {}


def record_request(endpoint: str, status: int, seconds: float) -> None:
    """Counts one answered HTTP request. ``labels()`` costs more than the update itself
    (validation, a lock, a tuple of strings); the children it returns are kept here (route
    templates and status codes are few)."""
    series = _series.get((endpoint, status))
    if series is None:
        series = (
            HTTP_REQUESTS.labels(endpoint=endpoint, status=str(status)),
            HTTP_DURATION.labels(endpoint=endpoint),
        )
        _series[(endpoint, status)] = series
    requests, duration = series
    requests.inc()
    duration.observe(seconds)


def route_template(scope: Scope) -> str:
    """The matched route's path template (Starlette's router stores the route in scope)."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


@runtime_checkable
class CountsWaiters(Protocol):
    def waiting_on(self, prefix: str) -> int: ...


def long_poll_waiters(bus: EventBus) -> int:
    return bus.waiting_on(request_topic("")) if isinstance(bus, CountsWaiters) else 0


class PendingGauge:
    """Refreshes ``backchannel_pending_requests`` from storage, at most every few seconds."""

    def __init__(self, refresh_seconds: float = PENDING_REFRESH_SECONDS) -> None:
        self._refresh_seconds = refresh_seconds
        self._refreshed_at: float | None = None

    async def refresh(self, provider: Provider) -> None:
        now = time.monotonic()
        if self._refreshed_at is not None and now - self._refreshed_at < self._refresh_seconds:
            return
        self._refreshed_at = now
        PENDING_REQUESTS.set(await count_pending(provider))


async def count_pending(provider: Provider) -> int:
    pending = await provider.storage.requests.list_requests(
        RequestState.PENDING, limit=PENDING_COUNT_LIMIT
    )
    now = provider.clock.now()
    return sum(1 for request in pending if request.expires_at > now)


def metrics_endpoint(slot: ProviderSlot) -> Callable[[Request], Awaitable[Response]]:
    pending = PendingGauge()

    async def metrics(_: Request) -> Response:
        provider = slot.get()
        await pending.refresh(provider)
        LONG_POLL_WAITERS.set(long_poll_waiters(provider.events))
        return Response(generate_latest(REGISTRY), headers={"content-type": CONTENT_TYPE})

    return metrics
