"""The PostgreSQL LISTEN/NOTIFY event bus (issue 5 item 5), on a real server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import asyncpg
import pytest

from backchannel.events import open_event_bus
from backchannel.events.postgres import PostgresEventBus, asyncpg_dsn
from backchannel.protocol.events import LocalEventBus
from backchannel.settings import ConfigurationError, Settings
from tests.events.bus_checks import (
    own_publish_wakes_once,
    until_waiting,
    wake_from_other_instance,
)
from tests.support.databases import PG_UNAVAILABLE, postgres_available, postgres_database

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


@pytest.fixture
async def database_url(anyio_backend: str) -> AsyncIterator[str]:
    if not postgres_available():
        pytest.skip(PG_UNAVAILABLE)
    async with postgres_database() as url:
        yield url


async def open_bus(url: str, reconnect_delay: float = 1.0) -> PostgresEventBus:
    bus = PostgresEventBus(asyncpg_dsn(url), reconnect_delay=reconnect_delay)
    await bus.open()
    return bus


async def test_a_publish_on_one_connection_wakes_a_waiter_on_another(database_url: str) -> None:
    first, second = await open_bus(database_url), await open_bus(database_url)
    try:
        latency = await wake_from_other_instance(first, second)
        assert latency < 1.0
        assert await wake_from_other_instance(second, first) < 1.0
    finally:
        await first.close()
        await second.close()


async def test_its_own_notification_does_not_wake_again(database_url: str) -> None:
    bus = await open_bus(database_url)
    try:
        await own_publish_wakes_once(bus)
    finally:
        await bus.close()


async def test_reconnects_after_the_listening_connection_is_killed(database_url: str) -> None:
    first, second = await open_bus(database_url, 0.05), await open_bus(database_url)
    killed = first.server_pid
    admin = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", killed)
        with anyio.fail_after(5):
            while first.server_pid in (None, killed):
                await anyio.sleep(0.02)
        assert await wake_from_other_instance(first, second) < 1.0
    finally:
        await admin.close()
        await first.close()
        await second.close()


async def test_publishing_while_disconnected_still_wakes_local_waiters(database_url: str) -> None:
    """Best effort: the failed NOTIFY is logged; it neither fails the decision nor keeps
    this process's own waiters waiting."""
    bus = await open_bus(database_url, reconnect_delay=60)
    admin = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", bus.server_pid)
        with anyio.fail_after(5):
            while bus.server_pid is not None:
                await anyio.sleep(0.02)
        woke: list[bool] = []

        async def wait() -> None:
            woke.append(await bus.wait("request:x", 5.0))

        async with anyio.create_task_group() as group:
            group.start_soon(wait)
            await until_waiting(bus)
            await bus.publish("request:x")
        assert woke == [True]
    finally:
        await admin.close()
        await bus.close()


async def test_open_event_bus_picks_postgres_for_a_postgresql_database(database_url: str) -> None:
    settings = Settings(database={"url": database_url}, events={"backend": "postgres"})
    bus = await open_event_bus(settings)
    try:
        assert isinstance(bus, PostgresEventBus)
    finally:
        await bus.close()


async def test_open_event_bus_refuses_postgres_events_on_sqlite() -> None:
    settings = Settings(events={"backend": "postgres"})
    with pytest.raises(ConfigurationError, match=r"events\.backend = postgres"):
        await open_event_bus(settings)


async def test_open_event_bus_defaults_to_the_in_process_bus() -> None:
    assert isinstance(await open_event_bus(Settings()), LocalEventBus)


def test_asyncpg_dsn_drops_the_sqlalchemy_driver_and_keeps_the_password() -> None:
    dsn = asyncpg_dsn("postgresql+asyncpg://bc:s3cret@db.internal:5433/backchannel")
    assert dsn == "postgresql://bc:s3cret@db.internal:5433/backchannel"
