"""The delivery worker: claims due outbox entries and POSTs them, one attempt each.

Ping and push entries are POSTed as JSON with the client's bearer token; ``webpush`` entries
(device notices) are encrypted for the subscription and VAPID-signed at the moment of
sending (``authenticator.webpush``).

Each attempt ends in exactly one storage call (``complete``, ``reschedule`` or ``fail``)
that also writes the attempt and its outcome to the request's timeline. A worker that dies
mid-attempt leaves its entries leased; they become claimable again when the lease ends, so
delivery is at least once (a crash after the receiver answered but before ``complete`` is
the one case that repeats a delivery).
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import structlog

from backchannel.authenticator import webpush
from backchannel.authenticator.notify import WEBPUSH
from backchannel.outbound import OutboundClient, OutboundError, OutboundResponse
from backchannel.outbox import metrics
from backchannel.outbox.policy import Decision, Verdict, after_failure, classify_status
from backchannel.protocol.ciba.delivery import Payload, open_payload
from backchannel.protocol.model import OutboxEntry, TimelineEvent
from backchannel.protocol.provider import Provider
from backchannel.protocol.sealed import SealError

Sleep = Callable[[float], Awaitable[None]]
log = structlog.get_logger("backchannel.outbox")
_BATCH = 32


class DeliveryWorker:
    def __init__(
        self,
        provider: Provider,
        outbound: OutboundClient,
        *,
        owner: str | None = None,
        sleep: Sleep = anyio.sleep,
        jitter: Callable[[], float] = random.random,
        batch: int = _BATCH,
    ) -> None:
        self.provider = provider
        self.outbound = outbound
        self.owner = owner or f"worker-{provider.random.token(8)}"
        self.settings = provider.settings.outbox
        self._sleep = sleep
        self._jitter = jitter
        self.batch = batch

    async def run(self) -> None:
        """Deliver until cancelled; idle for ``poll_interval_seconds`` when nothing is due.
        Cancelled, it releases its claim on the outbox for the next worker."""
        try:
            while True:
                try:
                    handled = await self.run_once()
                except Exception:  # a database blip must not end the worker
                    log.exception("outbox_worker_error")
                    handled = 0
                if handled == 0:
                    await self._sleep(self.settings.poll_interval_seconds)
        finally:
            with anyio.CancelScope(shield=True):
                await self._release()

    async def _release(self) -> None:
        try:
            await self.provider.storage.outbox.release(self.owner, self.provider.clock.now())
        except Exception:  # stopping anyway: the lease then ends on its own
            log.exception("outbox_release_error")

    async def run_once(self) -> int:
        """Claim what is due and make one attempt at each (concurrently). Returns how many."""
        entries = await self.provider.storage.outbox.claim_due(
            self.provider.clock.now(), self.owner, self.settings.lease_seconds, self.batch
        )
        async with anyio.create_task_group() as group:
            for entry in entries:
                group.start_soon(self.attempt, entry)
        return len(entries)

    async def attempt(self, entry: OutboxEntry) -> None:
        number = entry.attempts + 1
        if entry.deliver_until is not None and self.provider.clock.now() >= entry.deliver_until:
            await self._fail(entry, number - 1, "request expired before the attempt", [])
            return
        try:
            payload = open_payload(self.provider, entry)
        except SealError:
            await self._fail(entry, number - 1, "the payload does not open (master secret?)", [])
            return
        metrics.count(entry.kind, "attempted")
        started = time.perf_counter()
        try:
            response = await self._post(entry, payload)
        except OutboundError as exc:
            elapsed = time.perf_counter() - started
            detail: dict[str, Any] = {"error": type(exc).__name__, "message": str(exc)}
            decision = self._after_error(entry, number, str(exc), exc.retryable)
        else:
            elapsed = response.elapsed
            detail = {"status": response.status}
            decision = await self._after_response(entry, number, response.status, payload)
        metrics.observe_latency(entry.kind, elapsed)
        detail["duration_ms"] = round(elapsed * 1000, 1)
        await self._conclude(entry, number, decision, detail)

    async def _post(self, entry: OutboxEntry, payload: Payload) -> OutboundResponse:
        timeout = self.settings.timeout_seconds
        if entry.kind == WEBPUSH:  # encrypted for the device at the moment of sending
            return await webpush.send_notice(
                self.provider, self.outbound, payload.body, timeout=timeout
            )
        return await self.outbound.post_json(
            entry.url, payload.body, bearer=payload.bearer, timeout=timeout
        )

    async def _after_response(
        self, entry: OutboxEntry, number: int, status: int, payload: Payload
    ) -> Decision:
        if entry.kind == WEBPUSH and webpush.subscription_gone(status):
            await webpush.drop_subscription(self.provider, payload.body)
            return Decision(Verdict.FINAL, f"HTTP {status}: the push subscription is gone")
        return self._after_status(entry, number, status)

    def _after_status(self, entry: OutboxEntry, number: int, status: int) -> Decision:
        verdict, reason = classify_status(status)
        if verdict is Verdict.RETRY:
            return self._retry_or_give_up(entry, number, reason)
        return Decision(verdict, reason)

    def _after_error(
        self, entry: OutboxEntry, number: int, reason: str, retryable: bool
    ) -> Decision:
        if not retryable:
            return Decision(Verdict.FINAL, f"refused: {reason}")
        return self._retry_or_give_up(entry, number, reason)

    def _retry_or_give_up(self, entry: OutboxEntry, number: int, reason: str) -> Decision:
        now = self.provider.clock.now()
        return after_failure(number, reason, now, entry.deliver_until, self.settings, self._jitter)

    async def _conclude(
        self, entry: OutboxEntry, number: int, decision: Decision, detail: dict[str, Any]
    ) -> None:
        outbox = self.provider.storage.outbox
        now = self.provider.clock.now()
        attempted = self._event("delivery_attempt", entry, attempt=number, **detail)
        if decision.verdict is Verdict.DELIVERED:
            done = self._event("delivered", entry, attempts=number)
            if await outbox.complete(entry.id, self.owner, now, [attempted, done]):
                metrics.count(entry.kind, "succeeded")
            return
        if decision.verdict is Verdict.RETRY and decision.retry_at is not None:
            retry = self._event(
                "delivery_attempt",
                entry,
                attempt=number,
                **detail,
                retry_in_seconds=round(decision.retry_at - now, 3),
            )
            if await outbox.reschedule(
                entry.id, self.owner, now, decision.retry_at, decision.reason, [retry]
            ):
                metrics.count(entry.kind, "retried")
            return
        await self._fail(entry, number, decision.reason, [attempted])

    async def _fail(
        self, entry: OutboxEntry, attempts: int, reason: str, events: list[TimelineEvent]
    ) -> None:
        failed = self._event("delivery_failed", entry, attempts=attempts, reason=reason)
        now = self.provider.clock.now()
        if await self.provider.storage.outbox.fail(
            entry.id, self.owner, now, reason, [*events, failed]
        ):
            metrics.count(entry.kind, "failed")
            log.info("delivery_failed", kind=entry.kind, entry=entry.id[:8], reason=reason)

    def _event(self, kind: str, entry: OutboxEntry, **detail: Any) -> TimelineEvent:
        return TimelineEvent(
            at=self.provider.clock.now(), kind=kind, detail={"delivery": entry.kind, **detail}
        )
