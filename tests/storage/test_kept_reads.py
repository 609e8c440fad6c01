"""Hot reads kept in memory on SQLite (``storage.sql.kept_reads``): never stale.

Every bc-authorize reads its client, the hinted user, the user's pause and devices, and
every token request its client: the SQLite stores keep those answers for as long as
``PRAGMA data_version`` says no other connection has committed, and forget them at their
own writes. Another connection here is what another worker or the CLI is in production.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from backchannel.protocol.model import Client, Device, Pause, RequestState
from backchannel.protocol.ports import LookupKind
from backchannel.settings import DatabaseSettings
from backchannel.storage import open_storage
from backchannel.storage.sql import SqlStorage
from backchannel.storage.sql.kept_reads import NOT_KEPT, KeptReads
from backchannel.storage.sql.loop_sqlite import LoopSqliteDatabase
from tests.contract import builders
from tests.support.databases import migrated_sqlite

pytestmark = pytest.mark.anyio


@pytest.fixture
async def db(tmp_path: Path) -> DatabaseSettings:
    return await migrated_sqlite(tmp_path)


@asynccontextmanager
async def _opened(db: DatabaseSettings) -> AsyncIterator[SqlStorage]:
    storage = await open_storage(db)
    assert isinstance(storage, SqlStorage)
    assert isinstance(storage.engine, LoopSqliteDatabase)
    try:
        yield storage
    finally:
        await storage.close()


@pytest.fixture
async def worker(db: DatabaseSettings) -> AsyncIterator[SqlStorage]:
    """A serving process's storage."""
    async with _opened(db) as storage:
        yield storage


@pytest.fixture
async def other_worker(db: DatabaseSettings) -> AsyncIterator[SqlStorage]:
    """A second storage on the same file: what another worker or the CLI is."""
    async with _opened(db) as storage:
        yield storage


async def _next_request() -> None:
    """What lies between two requests in production: a turn of the event loop. Whether
    another connection committed is asked once per turn, so a change made elsewhere is seen
    from the next turn on (the last test shows why that is enough)."""
    await asyncio.sleep(0)


def _file(db: DatabaseSettings) -> str:
    return db.url.split("///", 1)[1]


async def test_a_change_by_another_process_is_seen_at_the_next_lookup(
    worker: SqlStorage,
    other_worker: SqlStorage,
) -> None:
    """A rotated secret or a changed delivery mode applies at once, also when another
    worker or ``backchannel clients`` changed it."""
    await worker.clients.add_client(builders.client())
    assert (await worker.clients.get_client("client-1")).name == "Call centre"  # type: ignore[union-attr]
    await other_worker.clients.update_client(builders.client(name="Renamed"))
    await _next_request()
    seen = await worker.clients.get_client("client-1")
    assert seen is not None and seen.name == "Renamed"
    assert await other_worker.clients.remove_client("client-1") is True
    await _next_request()
    assert await worker.clients.get_client("client-1") is None


async def test_a_change_by_plain_sql_elsewhere_is_seen(
    db: DatabaseSettings,
    worker: SqlStorage,
) -> None:
    """Not only through a store: any commit on another connection empties the cache."""
    await worker.clients.add_client(builders.client())
    await worker.clients.get_client("client-1")
    with sqlite3.connect(_file(db)) as other:
        other.execute("UPDATE clients SET name = 'Changed by SQL'")
    await _next_request()
    seen = await worker.clients.get_client("client-1")
    assert seen is not None and seen.name == "Changed by SQL"


async def test_the_stores_own_writes_are_seen(worker: SqlStorage) -> None:
    """``data_version`` does not move for the connection's own commits: the store forgets
    what it kept when it writes."""
    await worker.clients.add_client(builders.client())
    await worker.clients.get_client("client-1")
    await worker.clients.update_client(builders.client(name="Renamed"))
    seen = await worker.clients.get_client("client-1")
    assert seen is not None and seen.name == "Renamed"
    await worker.clients.remove_client("client-1")
    assert await worker.clients.get_client("client-1") is None
    await worker.clients.add_client(builders.client(name="Back again"))
    seen = await worker.clients.get_client("client-1")
    assert seen is not None and seen.name == "Back again"


async def test_a_returned_client_can_be_changed_without_changing_the_kept_one(
    worker: SqlStorage,
) -> None:
    await worker.clients.add_client(builders.client())
    first = await worker.clients.get_client("client-1")
    assert first is not None
    first.name = "Edited, not saved"
    second = await worker.clients.get_client("client-1")
    assert second is not None and second.name == "Call centre"
    await worker.clients.add_client(builders.client("client-2", hint_token_issuers={}))
    empty = await worker.clients.get_client("client-2")
    assert empty is not None
    empty.hint_token_issuers["https://evil.example.test"] = {}
    again = await worker.clients.get_client("client-2")
    assert again is not None and again.hint_token_issuers == {}


async def test_another_workers_request_writes_keep_the_client_and_its_client_writes_do_not(
    worker: SqlStorage,
    other_worker: SqlStorage,
) -> None:
    """With two workers each commits all the time; only a commit that wrote a kept table
    (``kept_generation``, bumped by triggers) drops the kept clients, users and devices.
    The statements this worker runs show where each answer came from."""
    engine = worker.engine
    assert isinstance(engine, LoopSqliteDatabase)
    await worker.clients.add_client(builders.client())
    await worker.clients.get_client("client-1")
    statements: list[str] = []
    engine._dbapi.set_trace_callback(statements.append)
    try:
        await other_worker.requests.create_request(builders.request(), builders.event())
        await _next_request()
        kept = await worker.clients.get_client("client-1")
        assert kept is not None and kept.name == "Call centre"
        assert any("kept_generation" in s for s in statements)
        assert not any("FROM clients" in s for s in statements)
        await other_worker.clients.update_client(builders.client(name="Renamed"))
        await _next_request()
        statements.clear()
        seen = await worker.clients.get_client("client-1")
        assert seen is not None and seen.name == "Renamed"
        assert any("FROM clients" in s for s in statements)
    finally:
        engine._dbapi.set_trace_callback(None)


async def test_plain_sql_on_each_kept_table_bumps_kept_generation(db: DatabaseSettings) -> None:
    """The triggers, not the stores, bump the row: any writer is seen."""
    with sqlite3.connect(_file(db)) as sql:
        (before,) = sql.execute("SELECT value FROM kept_generation").fetchone()
        sql.execute("INSERT INTO device_pauses (subject, client_id, until) VALUES ('u', 'c', 1)")
        sql.execute("UPDATE device_pauses SET until = 2")
        sql.execute("DELETE FROM device_pauses")
        sql.execute("UPDATE users SET claims = claims")
        sql.execute("DELETE FROM devices")
        sql.execute("DELETE FROM clients WHERE 0")  # a statement on no row fires no trigger
        (after,) = sql.execute("SELECT value FROM kept_generation").fetchone()
        triggers = sql.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'kept_%'"
        ).fetchone()
    assert after - before == 3  # one per written row: the pause's insert, update, delete
    assert triggers == (12,)


async def test_repeated_lookups_are_answered_from_memory(worker: SqlStorage) -> None:
    """The point of the cache: after the first read the row is not read again while nothing
    else writes (the row is changed behind SQLite's back through the same connection, which
    ``data_version`` does not report, to show where the answer comes from)."""
    engine = worker.engine
    assert isinstance(engine, LoopSqliteDatabase)
    await worker.clients.add_client(builders.client())
    await worker.clients.get_client("client-1")
    engine._dbapi.execute("UPDATE clients SET name = 'Behind the store'")
    kept = await worker.clients.get_client("client-1")
    assert kept is not None and kept.name == "Call centre"


async def test_data_version_ignores_own_commits_and_checkpoints(
    db: DatabaseSettings,
    worker: SqlStorage,
) -> None:
    """A checkpoint (the checkpoint thread has its own connection) is not a change."""
    engine = worker.engine
    assert isinstance(engine, LoopSqliteDatabase)
    async with engine.connect():
        before = engine.data_version()
    await worker.clients.add_client(builders.client())
    with sqlite3.connect(_file(db)) as other:
        other.execute("PRAGMA wal_checkpoint(PASSIVE)")
    await _next_request()
    async with engine.connect():
        assert engine.data_version() == before
    with sqlite3.connect(_file(db)) as other:
        other.execute("UPDATE clients SET name = 'x'")
    await _next_request()
    async with engine.connect():
        assert engine.data_version() != before


async def test_data_version_is_asked_once_per_turn_of_the_loop(
    db: DatabaseSettings,
    worker: SqlStorage,
) -> None:
    """Every request whose code runs in a turn had arrived before the answer was read, so a
    commit elsewhere during the turn is concurrent with all of them: the answer stands for
    the turn, and the requests of the next turn see the commit."""
    engine = worker.engine
    assert isinstance(engine, LoopSqliteDatabase)
    await worker.clients.add_client(builders.client())
    await _next_request()
    async with engine.connect():
        before = engine.data_version()
    with sqlite3.connect(_file(db)) as other:
        other.execute("UPDATE clients SET name = 'Changed in this turn'")
    async with engine.connect():
        assert engine.data_version() == before
    await _next_request()
    async with engine.connect():
        assert engine.data_version() != before
    seen = await worker.clients.get_client("client-1")
    assert seen is not None and seen.name == "Changed in this turn"


def test_unknown_versions_and_a_full_cache_keep_nothing_stale() -> None:
    versions: list[int | None] = [None]
    cache: KeptReads[Client] = KeptReads(lambda: versions[0], lambda c: c, limit=2)
    client = builders.client()
    assert cache.get("client-1") is NOT_KEPT
    cache.keep("client-1", client)
    assert cache.get("client-1") is NOT_KEPT  # SQLite could not tell: nothing was kept
    versions[0] = 7
    assert cache.get("client-1") is NOT_KEPT
    cache.keep("client-1", client)
    assert cache.get("client-1") == client
    for name in ("a", "b"):
        cache.keep(name, Client(client_id=name, name=name))
    assert cache.get("client-1") is NOT_KEPT  # the third client emptied the full cache
    versions[0] = 8
    assert cache.get("a") is NOT_KEPT


HINT: list[tuple[LookupKind, str]] = [("username", "name-user-1"), ("email", "x@example.test")]


async def test_the_hinted_user_follows_every_write(
    worker: SqlStorage,
    other_worker: SqlStorage,
) -> None:
    """Login hints resolve to the user as stored now: after an update or a user-code
    failure here, and after an update by another worker."""
    await worker.users.add_user(builders.user())
    first = await worker.users.find_first(HINT)
    assert first is not None and first.display_name == "Ada"
    first.claims["address"]["country"] = "FR"
    again = await worker.users.find_first(HINT)
    assert again is not None and again.claims["address"]["country"] == "GB"
    await worker.users.update_user(builders.user(display_name="Grace"))
    seen = await worker.users.find_first(HINT)
    assert seen is not None and seen.display_name == "Grace"
    await worker.users.record_user_code_failure("user-1", builders.T0, 5, 60.0)
    seen = await worker.users.find_first(HINT)
    assert seen is not None and seen.user_code_failures == 1
    await other_worker.users.update_user(builders.user(display_name="Hopper"))
    await _next_request()
    seen = await worker.users.find_first(HINT)
    assert seen is not None and seen.display_name == "Hopper"
    assert await other_worker.users.remove_user("user-1") is True
    await _next_request()
    assert await worker.users.find_first(HINT) is None


async def test_a_hint_that_matched_nobody_finds_the_user_added_later(worker: SqlStorage) -> None:
    assert await worker.users.find_first(HINT) is None
    await worker.users.add_user(builders.user())
    assert await worker.users.find_first(HINT) is not None


def _device(device_id: str = "d_1") -> Device:
    jwk = {"kty": "EC", "crv": "P-256", "x": "xx", "y": "yy"}
    return Device(device_id, "user-1", "Pixel", jwk, f"hmac:{device_id}", 100.0)


async def test_a_users_devices_follow_enrolment_revocation_and_other_workers(
    worker: SqlStorage,
    other_worker: SqlStorage,
) -> None:
    """A notification never goes to a revoked device, nor misses a new one."""
    assert await worker.devices.list_devices("user-1") == []
    await worker.devices.add_device(_device("d_1"))
    listed = await worker.devices.list_devices("user-1")
    assert [d.device_id for d in listed] == ["d_1"]
    listed[0].public_jwk["x"] = "changed by a caller"
    listed[0].name = "Renamed, not saved"
    listed.clear()
    kept = await worker.devices.list_devices("user-1")
    assert [(d.device_id, d.name, d.public_jwk["x"]) for d in kept] == [("d_1", "Pixel", "xx")]
    assert await worker.devices.revoke_device("d_1", 200.0) is True
    assert (await worker.devices.list_devices("user-1"))[0].revoked_at == 200.0
    await other_worker.devices.add_device(_device("d_2"))
    await _next_request()
    listed = await worker.devices.list_devices("user-1")
    assert [d.device_id for d in listed] == ["d_1", "d_2"]
    renamed = listed[1]
    renamed.name = "Work phone"
    await worker.devices.update_device(renamed)
    assert (await worker.devices.list_devices("user-1"))[1].name == "Work phone"


async def test_a_device_heartbeat_leaves_every_workers_kept_reads_alone(
    worker: SqlStorage,
    other_worker: SqlStorage,
) -> None:
    """The authenticator app's calls store ``last_seen_at`` (``touch_device``); that column
    fires no ``kept_generation`` trigger and empties no kept list, so neither this worker
    nor another reads the user's devices again. Any other change to a device still does."""
    engine = worker.engine
    assert isinstance(engine, LoopSqliteDatabase)
    await worker.devices.add_device(_device("d_1"))
    await worker.devices.list_devices("user-1")
    await other_worker.devices.list_devices("user-1")
    statements: list[str] = []
    engine._dbapi.set_trace_callback(statements.append)
    try:
        await worker.devices.touch_device("d_1", 150.0)
        await other_worker.devices.touch_device("d_1", 160.0)
        await _next_request()
        assert [d.device_id for d in await worker.devices.list_devices("user-1")] == ["d_1"]
        assert not any("FROM devices" in s for s in statements)
        seen = await worker.devices.get_device("d_1")  # not a kept read: the stored row
        assert seen is not None and seen.last_seen_at == 160.0
        await other_worker.devices.revoke_device("d_1", 200.0)
        await _next_request()
        statements.clear()
        assert (await worker.devices.list_devices("user-1"))[0].revoked_at == 200.0
        assert any("FROM devices" in s for s in statements)
    finally:
        engine._dbapi.set_trace_callback(None)


def test_the_device_trigger_names_every_column_but_last_seen_at() -> None:
    """A column added to ``devices`` later is in the trigger too, or changing it elsewhere
    would leave a worker's kept device lists stale (test_migrations checks that a migration
    puts it there)."""
    from backchannel.storage.sql.tables import kept_generation_triggers
    from backchannel.storage.sql.tables_devices import devices

    (trigger,) = [t for t in kept_generation_triggers() if "devices_update" in t]
    named = trigger.split("UPDATE OF ", 1)[1].split(" ON devices", 1)[0].split(", ")
    assert set(named) == {c.name for c in devices.c} - {"last_seen_at"}


async def test_a_pause_applies_at_once_and_no_pause_is_kept_too(
    worker: SqlStorage,
    other_worker: SqlStorage,
) -> None:
    """ "This wasn't me" pauses a client for a user: the next bc-authorize must see it."""
    assert await worker.devices.get_pause("client-1", "user-1") is None
    await worker.devices.set_pause(Pause("client-1", "user-1", 500.0))
    assert await worker.devices.get_pause("client-1", "user-1") == Pause(
        "client-1", "user-1", 500.0
    )
    await other_worker.devices.set_pause(Pause("client-1", "user-1", 900.0))
    await _next_request()
    assert await worker.devices.get_pause("client-1", "user-1") == Pause(
        "client-1", "user-1", 900.0
    )


def test_on_postgresql_every_read_goes_to_the_database() -> None:
    """Only SQLite can tell cheaply whether someone else wrote."""
    from backchannel.storage.sql.kept_reads import kept_reads
    from backchannel.storage.sql.lean_postgres import LeanPostgresDatabase

    engine = object.__new__(LeanPostgresDatabase)
    cache = kept_reads(engine, lambda c: c)
    assert cache.get("client-1") is NOT_KEPT
    cache.keep("client-1", builders.client())
    assert cache.get("client-1") is NOT_KEPT


async def test_a_request_stored_here_is_answered_from_memory_and_follows_its_transitions(
    worker: SqlStorage,
) -> None:
    """The approval and the token call of a flow read the request bc-authorize stored: kept
    (the row is changed behind SQLite's back through the same connection to show where
    the answer comes from), and each transition here keeps what it wrote."""
    engine = worker.engine
    assert isinstance(engine, LoopSqliteDatabase)
    requests = worker.requests
    assert await requests.get_request("hmac:unknown") is None  # learns the data_version
    request = builders.request()
    await requests.create_request(request, builders.event())
    engine._dbapi.execute("UPDATE auth_requests SET binding_message = 'behind the store'")
    kept = await requests.get_request(request.id_hash)
    assert kept == request
    assert kept is not None and kept is not request
    kept.authorization_details[0]["amount"] = "99.00"  # type: ignore[index]
    again = await requests.get_request(request.id_hash)
    assert again is not None and again.authorization_details == [
        {"type": "payment_initiation", "amount": "10.00"}
    ]
    approved = replace(request, state=RequestState.APPROVED, decided_at=builders.T0 + 1)
    assert await requests.transition(approved, RequestState.PENDING, builders.event("approved"))
    assert await requests.get_request(request.id_hash) == approved
    assert await requests.redeem(approved, builders.event("redeemed"), None)
    redeemed = await requests.get_request(request.id_hash)
    assert redeemed is not None and redeemed.state is RequestState.REDEEMED


async def test_a_request_changed_by_another_worker_is_read_again(
    worker: SqlStorage,
    other_worker: SqlStorage,
) -> None:
    """Another worker approves (or the sweeper of another process expires) a request this
    one keeps: the next lookup sees it, and a transition from the old state loses."""
    requests = worker.requests
    assert await requests.get_request("hmac:unknown") is None
    request = builders.request(expires_at=builders.T0 + 10)
    await requests.create_request(request, builders.event())
    assert await requests.get_request(request.id_hash) == request
    denied = replace(request, state=RequestState.DENIED, decided_at=builders.T0 + 1)
    assert await other_worker.requests.transition(
        denied, RequestState.PENDING, builders.event("denied")
    )
    await _next_request()
    assert await requests.get_request(request.id_hash) == denied
    approved = replace(request, state=RequestState.APPROVED)
    assert not await requests.transition(approved, RequestState.PENDING, builders.event("x"))
    assert await requests.get_request(request.id_hash) == denied


async def test_a_lost_transition_and_an_expiry_here_forget_the_kept_request(
    db: DatabaseSettings,
    worker: SqlStorage,
) -> None:
    requests = worker.requests
    assert await requests.get_request("hmac:unknown") is None
    request = builders.request(expires_at=builders.T0 + 10)
    await requests.create_request(request, builders.event())
    assert await requests.expire_overdue(builders.T0 + 20) == 1
    expired = await requests.get_request(request.id_hash)
    assert expired is not None and expired.state is RequestState.EXPIRED
    with sqlite3.connect(_file(db)) as other:  # e.g. an operator's SQL, another process
        other.execute("UPDATE auth_requests SET state = 'pending'")
    await _next_request()
    assert (await requests.get_request(request.id_hash)) == request  # read again
    late = replace(request, state=RequestState.APPROVED)
    assert not await requests.transition(late, RequestState.DENIED, builders.event("x"))
    assert await requests.get_request(request.id_hash) == request


async def test_unknown_request_ids_are_not_kept(worker: SqlStorage) -> None:
    """auth_req_ids come from clients: a miss is never kept, so guessing fills nothing and
    a request stored later under that id is found."""
    request = builders.request()
    assert await worker.requests.get_request(request.id_hash) is None
    await worker.requests.create_request(request, builders.event())
    assert await worker.requests.get_request(request.id_hash) == request
