"""Long polling (CIBA §10.1, item 93): with ``ciba.long_poll_seconds`` set, a poll for a
pending request is held until the decision is published on the event bus or the hold ends,
always at least a second before the request expires; then it is answered normally.

Telling a held poll from a fast or overlapping one (items 95, 99, 101): the held poll first
claims the request by storing ``last_polled_at`` = the latest moment it may answer. A second
poll during the hold therefore looks too fast and gets slow_down. When the held poll answers
it stores the actual answer time (conditionally: an overlapping slow_down wins), so the
client's next poll, one interval after the answer, is on time.

The remaining lifetime is measured on the injected clock; the hold itself waits in real
time, since waking early is the point.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import replace

from backchannel.protocol.ciba import lifecycle
from backchannel.protocol.errors import SlowDown
from backchannel.protocol.events import EventBus, request_topic
from backchannel.protocol.model import AuthRequest, RequestState
from backchannel.protocol.provider import Provider

# A held poll answers this long before the request expires, so it never answers a request
# that is already dead by the time the client reads the answer.
_EXPIRY_MARGIN = 1.0


def hold_seconds(provider: Provider, request: AuthRequest) -> float:
    """How long a poll of ``request`` may be held now; 0 = answer at once."""
    configured = provider.settings.ciba.long_poll_seconds
    if configured <= 0:
        return 0.0
    remaining = request.expires_at - provider.clock.now() - _EXPIRY_MARGIN
    return max(0.0, min(float(configured), remaining))


async def hold(provider: Provider, request: AuthRequest, seconds: float) -> AuthRequest:
    """Hold this poll for up to ``seconds``; the request as stored when the hold ends.
    Raises ``SlowDown`` when another poll of the same request got in first."""
    claimed_until = provider.clock.now() + seconds
    claim = replace(request, last_polled_at=claimed_until)
    polled = lifecycle.event(provider, "polled", long_poll_seconds=round(seconds, 3))
    if not await provider.storage.requests.record_poll(claim, request.last_polled_at, polled):
        raise SlowDown("overlapping polls for the same auth_req_id")
    async with _subscribed(provider.events, request_topic(request.id_hash), seconds) as woken:
        # Subscribed before this read: a decision landing in between still wakes us.
        latest = await _reread(provider, request)
        if latest.state is RequestState.PENDING:
            await woken
            latest = await _reread(provider, request)
    if latest.state is RequestState.PENDING:
        await _record_answer(provider, latest, claimed_until)
    return latest


async def _record_answer(provider: Provider, request: AuthRequest, claimed_until: float) -> None:
    answered = replace(request, last_polled_at=provider.clock.now())
    await provider.storage.requests.record_poll(answered, claimed_until, None)


async def _reread(provider: Provider, request: AuthRequest) -> AuthRequest:
    latest = await provider.storage.requests.get_request(request.id_hash)
    return await lifecycle.expire_if_overdue(provider, latest or request)


@asynccontextmanager
async def _subscribed(
    bus: EventBus, topic: str, timeout: float
) -> AsyncIterator[asyncio.Task[bool]]:
    """A wait on ``topic`` that is already registered when the block starts."""
    waiter = asyncio.create_task(bus.wait(topic, timeout))
    await asyncio.sleep(0)  # let the task run up to its first suspension: registered
    try:
        yield waiter
    finally:
        if not waiter.done():
            waiter.cancel()
        with suppress(asyncio.CancelledError):
            await waiter
