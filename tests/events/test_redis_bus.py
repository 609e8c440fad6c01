"""The Redis pub/sub event bus (issue 5 item 5), on the real Redis at 127.0.0.1:6379."""

from __future__ import annotations

import secrets
import socket
from collections.abc import AsyncIterator

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from backchannel.events import open_event_bus
from backchannel.events.redis import RedisEventBus
from backchannel.settings import Settings
from tests.events.bus_checks import own_publish_wakes_once, wake_from_other_instance

pytestmark = pytest.mark.anyio
REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1.0):
            return True
    except OSError:
        return False


@pytest.fixture
async def buses(anyio_backend: str) -> AsyncIterator[tuple[RedisEventBus, RedisEventBus]]:
    if not redis_available():
        pytest.skip("Redis at 127.0.0.1:6379 does not answer")
    # A channel of its own, so parallel test runs cannot wake each other.
    channel = f"backchannel_test_{secrets.token_hex(6)}"
    first = RedisEventBus(REDIS_URL, channel=channel)
    second = RedisEventBus(REDIS_URL, channel=channel)
    await first.open()
    await second.open()
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_a_publish_in_one_instance_wakes_a_waiter_in_another(
    buses: tuple[RedisEventBus, RedisEventBus],
) -> None:
    first, second = buses
    assert await wake_from_other_instance(first, second) < 1.0
    assert await wake_from_other_instance(second, first) < 1.0


async def test_its_own_message_does_not_wake_again(
    buses: tuple[RedisEventBus, RedisEventBus],
) -> None:
    await own_publish_wakes_once(buses[0])


async def test_open_event_bus_picks_redis(buses: tuple[RedisEventBus, RedisEventBus]) -> None:
    bus = await open_event_bus(Settings(events={"backend": "redis", "redis_url": REDIS_URL}))
    try:
        assert isinstance(bus, RedisEventBus)
    finally:
        await bus.close()


async def test_an_unreachable_redis_fails_at_open() -> None:
    bus = RedisEventBus("redis://127.0.0.1:1/0")
    with pytest.raises(RedisConnectionError):
        await bus.open()
