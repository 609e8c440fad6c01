"""The device's event stream (issue 6 item 2): revoking a device ends its open stream at
once, through the provider's event bus (the same call ``backchannel devices revoke``
makes)."""

from __future__ import annotations

import time

import anyio
import pytest

from backchannel.authenticator import enrol
from backchannel.protocol.events import LocalEventBus
from tests.authenticator.support import world

pytestmark = pytest.mark.anyio


async def test_revoking_a_device_ends_its_open_event_stream_within_a_second() -> None:
    w = await world()
    device = await w.device()
    bus = w.provider.events
    assert isinstance(bus, LocalEventBus)
    bodies: list[str] = []

    async def read_stream() -> None:
        response = await w.http.get(
            "/authenticator/api/events",
            headers={"authorization": f"Bearer {device.device_token}"},
        )
        bodies.append(response.text)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(read_stream)
            while bus.waiting_on("user:") == 0:  # the stream is open and waiting
                await anyio.sleep(0.01)
            started = time.monotonic()
            assert await enrol.revoke(w.provider, device.device_id)
            while not bodies:
                await anyio.sleep(0.01)
            elapsed = time.monotonic() - started
    assert elapsed < 1.0
    assert bodies[0].startswith(": connected") and "keep-alive" not in bodies[0]
    assert bus.waiting == 0
    assert not await enrol.revoke(w.provider, device.device_id)  # already revoked


async def test_revoking_another_device_of_the_user_keeps_the_stream_open() -> None:
    w = await world()
    listening, other = await w.device("Phone"), await w.device("Tablet")
    bus = w.provider.events
    assert isinstance(bus, LocalEventBus)
    ended = anyio.Event()

    async def read_stream() -> None:
        await w.http.get(
            "/authenticator/api/events",
            headers={"authorization": f"Bearer {listening.device_token}"},
        )
        ended.set()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(read_stream)
            while bus.waiting_on("user:") == 0:
                await anyio.sleep(0.01)
            assert await enrol.revoke(w.provider, other.device_id)
            with anyio.move_on_after(0.3):
                await ended.wait()
            assert not ended.is_set()  # woke, re-checked its own device, kept waiting
            assert bus.waiting_on("user:") == 1
            assert await enrol.revoke(w.provider, listening.device_id)
            await ended.wait()
