"""The in-process event bus: a publish wakes every waiter on its topic, and only those."""

from __future__ import annotations

import time

import anyio
import pytest

from backchannel.protocol.events import LocalEventBus, request_topic, user_topic

pytestmark = pytest.mark.anyio


async def until_waiting(bus: LocalEventBus, count: int) -> None:
    with anyio.fail_after(1):
        while bus.waiting < count:
            await anyio.sleep(0.002)


async def test_publish_wakes_a_waiter_long_before_its_timeout() -> None:
    bus = LocalEventBus()
    results: list[bool] = []
    started = time.monotonic()
    async with anyio.create_task_group() as group:
        group.start_soon(lambda: _collect(bus, request_topic("a"), 5.0, results))
        await until_waiting(bus, 1)
        await bus.publish(request_topic("a"))
    assert results == [True]
    assert time.monotonic() - started < 1.0
    assert bus.waiting == 0


async def test_wait_times_out_false_when_nothing_is_published() -> None:
    bus = LocalEventBus()
    started = time.monotonic()
    assert await bus.wait(request_topic("a"), 0.05) is False
    assert time.monotonic() - started >= 0.05
    assert bus.waiting == 0


async def test_one_publish_wakes_all_waiters_of_the_topic_and_no_other() -> None:
    bus = LocalEventBus()
    woken: list[bool] = []
    other: list[bool] = []
    async with anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(lambda: _collect(bus, request_topic("a"), 5.0, woken))
        group.start_soon(lambda: _collect(bus, user_topic("u"), 0.2, other))
        await until_waiting(bus, 21)
        assert bus.waiting_on("request:") == 20
        assert bus.waiting_on("user:") == 1
        await bus.publish(request_topic("a"))
    assert woken == [True] * 20
    assert other == [False]


async def test_publish_without_waiters_is_not_remembered() -> None:
    """Waiters re-read storage; a publish nobody waited for must not wake a later wait."""
    bus = LocalEventBus()
    await bus.publish(request_topic("a"))
    assert await bus.wait(request_topic("a"), 0.02) is False


async def _collect(bus: LocalEventBus, topic: str, timeout: float, into: list[bool]) -> None:
    into.append(await bus.wait(topic, timeout))
