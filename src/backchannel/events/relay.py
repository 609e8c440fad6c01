"""The part both cross-process buses share: local waiters fed by a remote transport.

A publish wakes this process's waiters at once and is sent to the transport for the other
processes; a message from the transport wakes local waiters. Delivery is best-effort by
design (waiters re-read storage): a failed send is logged, never raised to the decision
that caused it, and a lost connection is re-established in the background. Messages sent
while disconnected are lost; the affected long polls simply wait until their timeout.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from contextlib import suppress

import structlog

from backchannel.protocol.events import LocalEventBus

log = structlog.get_logger("backchannel.events")


class RelayedEventBus(ABC):
    backend = "relay"

    def __init__(self, *, reconnect_delay: float = 1.0) -> None:
        self._local = LocalEventBus()
        self._reconnect_delay = reconnect_delay
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        return self._local.waiting

    def waiting_on(self, prefix: str) -> int:
        return self._local.waiting_on(prefix)

    async def open(self) -> None:
        """Connect (raising if the transport is unreachable), then keep the connection."""
        await self._connect()
        self._supervisor = asyncio.create_task(self._supervise())

    async def publish(self, topic: str) -> None:
        await self._local.publish(topic)
        try:
            await self._send(topic)
        except Exception as exc:  # best-effort: the decision itself is already stored
            log.warning("event_publish_failed", backend=self.backend, error=type(exc).__name__)

    async def wait(self, topic: str, timeout: float) -> bool:
        return await self._local.wait(topic, timeout)

    async def close(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            with suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        await self._disconnect()
        await self._local.close()

    async def _received(self, topic: str) -> None:
        await self._local.publish(topic)

    async def _supervise(self) -> None:
        while True:
            await self._until_lost()
            log.warning("event_bus_disconnected", backend=self.backend)
            await self._disconnect()
            await self._reconnect()
            log.info("event_bus_reconnected", backend=self.backend)

    async def _reconnect(self) -> None:
        while True:
            await asyncio.sleep(self._reconnect_delay)
            try:
                await self._connect()
                return
            except Exception as exc:
                log.warning("event_bus_reconnect_failed", backend=self.backend,
                            error=type(exc).__name__)  # fmt: skip

    @abstractmethod
    async def _connect(self) -> None:
        """Open the connection and subscribe; raise when that fails."""

    @abstractmethod
    async def _until_lost(self) -> None:
        """Return when the connection is gone."""

    @abstractmethod
    async def _disconnect(self) -> None:
        """Close the connection, quietly; safe when already closed."""

    @abstractmethod
    async def _send(self, topic: str) -> None:
        """Send ``topic`` to the other processes."""
