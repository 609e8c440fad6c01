"""Several workers on one database never deliver one entry twice (issue 5 item 3): on
PostgreSQL they share the work (``FOR UPDATE SKIP LOCKED``), on SQLite one lease holder
delivers while the other stays idle."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import anyio
import pytest

from backchannel.outbound import OutboundClient
from backchannel.outbox.worker import DeliveryWorker
from backchannel.protocol.model import DeliveryMode
from backchannel.protocol.provider import Provider
from backchannel.settings import DatabaseSettings
from backchannel.storage import migrate, open_storage
from backchannel.storage.sql import SqlStorage
from tests.outbox.helpers import decided, instant_worker, notified_client
from tests.support.fixtures import empty_tables
from tests.support.provider import make_provider
from tests.support.receiver import Receiver, Reply, running_receiver

pytestmark = pytest.mark.anyio
ENTRIES = 30


async def _race(first: DeliveryWorker, second: DeliveryWorker) -> dict[str, int]:
    handled = {first.owner: 0, second.owner: 0}

    async def drain(worker: DeliveryWorker) -> None:
        for _ in range(40):
            handled[worker.owner] += await worker.run_once()
            await anyio.sleep(0.01)

    async with anyio.create_task_group() as group:
        group.start_soon(drain, first)
        group.start_soon(drain, second)
    return handled


async def _two_workers(
    db: DatabaseSettings, receiver: Receiver
) -> tuple[list[str], dict[str, int]]:
    one, two = await open_storage(db), await open_storage(db)
    try:
        if isinstance(one, SqlStorage) and one.engine.dialect.name == "postgresql":
            await empty_tables(one)
        provider = await make_provider(storage=one, dev_mode=True)
        # A second process on the same database: its own engine, the same master secret.
        other: Provider = replace(provider, storage=two)
        await notified_client(provider, DeliveryMode.PING, receiver.url("/cb"))
        ids = [await decided(provider) for _ in range(ENTRIES)]
        handled = await _race(instant_worker(provider, "w1", 4), instant_worker(other, "w2", 4))
        return ids, handled
    finally:
        await one.close()
        await two.close()


@pytest.mark.postgres
async def test_item_3_two_workers_on_postgres_share_and_never_repeat(postgres_url: str) -> None:
    with running_receiver() as receiver:
        receiver.on("/cb", Reply(204, delay=0.02))
        ids, handled = await _two_workers(DatabaseSettings(url=postgres_url), receiver)
        calls = receiver.calls_to("/cb")
    assert Counter(c.json()["auth_req_id"] for c in calls) == Counter(ids)
    assert sum(handled.values()) == ENTRIES
    assert min(handled.values()) > 0  # both took part


async def test_item_3_two_workers_on_sqlite_one_lease_holder_delivers(tmp_path: Path) -> None:
    db = DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'bc.db'}")
    await migrate.upgrade(db)
    with running_receiver() as receiver:
        ids, handled = await _two_workers(db, receiver)
        calls = receiver.calls_to("/cb")
    assert Counter(c.json()["auth_req_id"] for c in calls) == Counter(ids)
    assert sorted(handled.values()) == [0, ENTRIES]  # only the lease holder claimed


async def test_a_stopped_worker_releases_the_sqlite_lease_for_the_next_one(tmp_path: Path) -> None:
    """A restarted server claims at once: the worker that stopped (cancelled, as on a clean
    shutdown) ended its lease, so the next owner does not wait ``outbox.lease_seconds``."""
    db = DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'bc.db'}")
    await migrate.upgrade(db)
    storage = await open_storage(db)
    try:
        provider = await make_provider(storage=storage, dev_mode=True)
        with running_receiver() as receiver:
            receiver.on("/cb", Reply(204))
            await notified_client(provider, DeliveryMode.PING, receiver.url("/cb"))
            await decided(provider)
            before = DeliveryWorker(provider, OutboundClient(provider.settings), owner="before")
            async with anyio.create_task_group() as group:
                group.start_soon(before.run)
                await receiver.wait_calls(1, path="/cb")
                await anyio.sleep(0.05)  # now idle for poll_interval_seconds (0.5 s)
                await decided(provider)
                assert await instant_worker(provider, "blocked").run_once() == 0  # the lease
                group.cancel_scope.cancel()
            assert await instant_worker(provider, "after-restart").run_once() == 1
            await receiver.wait_calls(2, path="/cb")
    finally:
        await storage.close()
