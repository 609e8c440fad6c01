"""PostgreSQL: the request store's writes go to the server as one statement each, without
BEGIN and COMMIT (``storage.sql.single_statement``); what they write is the contract suite's
business, what they send is checked here, through asyncpg's own query log."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from backchannel.protocol.model import Consent, DeliveryMode, OutboxEntry, RequestState
from backchannel.protocol.ports import DuplicateError
from backchannel.settings import DatabaseSettings
from backchannel.storage.sql import SqlStorage
from backchannel.storage.sql.engine import open_database
from backchannel.storage.sql.lean_postgres import LeanPostgresDatabase
from tests.contract import builders
from tests.support.fixtures import empty_tables, postgres_url

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]
__all__ = ["postgres_url"]  # fixture: skips when PostgreSQL does not answer
T0 = builders.T0


class SentStatements:
    """The statements the pool's one connection sends, as asyncpg logs them."""

    def __init__(self) -> None:
        self.sql: list[str] = []

    def __call__(self, record: Any) -> None:
        self.sql.append(" ".join(record.query.split()))

    async def take(self) -> list[str]:
        await asyncio.sleep(0)  # asyncpg calls its loggers with call_soon
        taken, self.sql = self.sql, []
        return taken


Logged = tuple[SqlStorage, SentStatements]


@pytest.fixture
async def logged(postgres_url: str, anyio_backend: str) -> AsyncIterator[Logged]:
    database = open_database(DatabaseSettings(url=postgres_url, pool_size=1))
    assert isinstance(database, LeanPostgresDatabase)
    storage = SqlStorage(database)
    await empty_tables(storage)
    sent = SentStatements()
    connection = await database.pool.acquire()
    connection.add_query_logger(sent)
    database.pool.release(connection)
    try:
        yield storage, sent
    finally:
        await database.dispose()


def _is_transaction_control(sql: str) -> bool:
    return sql.split(" ", 1)[0].upper() in {"BEGIN", "COMMIT", "ROLLBACK"}


async def test_each_state_change_is_one_statement(
    logged: Logged,
) -> None:
    storage, sent = logged
    requests = storage.requests
    request = builders.request()
    consent = Consent(request.id_hash, request.subject, "{}", "hmac:mac", T0, ("AB12", "CD34"))
    await requests.create_request(request, builders.event(), consent=consent)
    polled = replace(request, last_polled_at=T0 + 5, interval=10)
    assert await requests.record_poll(polled, None, builders.event("slow_down", T0 + 5))
    polled_again = replace(polled, last_polled_at=T0 + 15)
    assert await requests.record_poll(polled_again, T0 + 5, None)
    approved = replace(
        polled_again, state=RequestState.APPROVED, decided_at=T0 + 16, auth_time=T0 + 16
    )
    assert await requests.transition(approved, RequestState.PENDING, builders.event("approved"))
    token = builders.refresh_token()
    assert await requests.redeem(approved, builders.event("redeemed"), token)
    statements = await sent.take()
    assert [sql.split(" ", 1)[0] for sql in statements] == [
        "WITH",  # the request, its event and its consent
        "WITH",  # the poll answered slow_down and its event
        "UPDATE",  # a poll without an event
        "WITH",  # the approval and its event
        "WITH",  # the redemption, its event and the refresh token
    ], statements
    kinds = [event.kind for event in await requests.timeline(request.id_hash)]
    assert kinds == ["created", "slow_down", "approved", "redeemed"]
    assert await storage.tokens.get_refresh_token(token.token_hash) == token
    assert await storage.devices.get_consent(request.id_hash) == consent


async def test_a_lost_write_sends_one_statement_and_writes_nothing(
    logged: Logged,
) -> None:
    storage, sent = logged
    request = builders.request()
    await storage.requests.create_request(request, builders.event())
    await sent.take()
    redeemed = replace(request, state=RequestState.REDEEMED)
    token = builders.refresh_token()
    assert not await storage.requests.redeem(redeemed, builders.event("redeemed"), token)
    assert len(await sent.take()) == 1
    assert await storage.tokens.get_refresh_token(token.token_hash) is None
    assert [e.kind for e in await storage.requests.timeline(request.id_hash)] == ["created"]


async def test_a_duplicate_request_fails_whole(logged: Logged) -> None:
    storage, _ = logged
    request = builders.request()
    await storage.requests.create_request(request, builders.event())
    with pytest.raises(DuplicateError):
        await storage.requests.create_request(request, builders.event("again"))
    assert [e.kind for e in await storage.requests.timeline(request.id_hash)] == ["created"]


async def test_writes_with_outbox_entries_keep_their_transaction(
    logged: Logged,
) -> None:
    storage, sent = logged
    request = builders.request(delivery_mode=DeliveryMode.PING)
    await storage.requests.create_request(request, builders.event())
    await sent.take()
    entry = OutboxEntry(
        "entry-1", "ping", "https://rp.example.test/cb", "sealed", T0, T0, request.id_hash
    )
    approved = replace(request, state=RequestState.APPROVED, decided_at=T0 + 1)
    assert await storage.requests.transition(
        approved, RequestState.PENDING, builders.event("approved"), [entry]
    )
    statements = await sent.take()
    assert _is_transaction_control(statements[0]) and statements[-1] == "COMMIT"
    assert [e.id for e in await storage.outbox.list_entries(request.id_hash)] == ["entry-1"]
