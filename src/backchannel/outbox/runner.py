"""Running the outbox: the delivery worker and the expiry sweeper, together, until stopped.

Used by ``backchannel serve`` (inside each server process, when ``outbox.run_in_server``)
and by ``backchannel worker`` (alone).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import structlog

from backchannel.outbound import OutboundClient
from backchannel.outbox.worker import DeliveryWorker, Sleep
from backchannel.protocol.ciba import delivery
from backchannel.protocol.provider import Provider

SWEEP_INTERVAL_SECONDS = 2.0
log = structlog.get_logger("backchannel.outbox")


class ExpirySweeper:
    """Expires overdue requests (enqueueing push ``expired_token`` errors with them) and
    finishes approved push requests whose tokens were never pushed."""

    def __init__(
        self,
        provider: Provider,
        *,
        interval: float = SWEEP_INTERVAL_SECONDS,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        self.provider = provider
        self.interval = interval
        self._sleep = sleep

    async def run_once(self) -> int:
        expired = await delivery.sweep_expired(self.provider)
        await delivery.push_unpushed(self.provider)
        return expired

    async def run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("expiry_sweep_error")
            await self._sleep(self.interval)


@asynccontextmanager
async def running_outbox(provider: Provider, *, owner: str | None = None) -> AsyncIterator[None]:
    """The worker and the sweeper run in the background for the duration of the block."""
    outbound = OutboundClient(provider.settings)
    worker = DeliveryWorker(provider, outbound, owner=owner)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(worker.run)
            group.start_soon(ExpirySweeper(provider).run)
            try:
                yield
            finally:
                group.cancel_scope.cancel()
    finally:
        await outbound.close()


@asynccontextmanager
async def outbox_in_server(provider: Provider) -> AsyncIterator[None]:
    """``running_outbox`` when ``outbox.run_in_server`` is on; otherwise nothing."""
    if not provider.settings.outbox.run_in_server:
        yield
        return
    async with running_outbox(provider):
        yield


async def run_forever(provider: Provider) -> None:
    async with running_outbox(provider):
        await anyio.sleep_forever()
