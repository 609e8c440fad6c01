"""Checks every cross-process bus must pass: two instances stand for two processes."""

from __future__ import annotations

import time

import anyio

from backchannel.events.relay import RelayedEventBus
from backchannel.protocol.events import request_topic


async def until_waiting(bus: RelayedEventBus, count: int = 1) -> None:
    with anyio.fail_after(2):
        while bus.waiting < count:
            await anyio.sleep(0.002)


async def wake_from_other_instance(waiter_bus: RelayedEventBus, other: RelayedEventBus) -> float:
    """Seconds from the other instance's publish until the waiter woke (fails if it didn't)."""
    topic = request_topic("cross-process")
    woke: list[bool] = []
    published_at = 0.0

    async def wait() -> None:
        woke.append(await waiter_bus.wait(topic, 5.0))

    async with anyio.create_task_group() as group:
        group.start_soon(wait)
        await until_waiting(waiter_bus)
        published_at = time.monotonic()
        await other.publish(topic)
    assert woke == [True]
    return time.monotonic() - published_at


async def own_publish_wakes_once(bus: RelayedEventBus) -> None:
    """A publish wakes local waiters at once; the transport's echo must not wake the next
    waiter (which would end a fresh long poll for nothing)."""
    topic = request_topic("echo")
    first: list[bool] = []

    async def wait() -> None:
        first.append(await bus.wait(topic, 5.0))

    async with anyio.create_task_group() as group:
        group.start_soon(wait)
        await until_waiting(bus)
        await bus.publish(topic)
    assert first == [True]
    assert await bus.wait(topic, 0.3) is False
