"""PostgreSQL through ``LeanPostgresDatabase`` (``storage.sql.lean_postgres``) gives what
SQLAlchemy's engine gives: the same stored values, rows and types, the same errors; blocks
commit or roll back, and reads see only what was committed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import Double, Numeric, bindparam, cast, func, select, text, type_coerce, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from backchannel.events.postgres import asyncpg_dsn
from backchannel.settings import DatabaseSettings
from backchannel.storage.sql import SqlStorage
from backchannel.storage.sql.engine import create_engine, open_database
from backchannel.storage.sql.lean_postgres import LeanPostgresDatabase
from backchannel.storage.sql.prepared import insert_into
from backchannel.storage.sql.tables import auth_requests, clients, metadata, timeline_events
from tests.support.fixtures import postgres_url

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]
__all__ = ["postgres_url"]  # fixture: skips when PostgreSQL does not answer

CLIENT = {
    "client_id": "c1",
    "name": "Banque « Zoé »",
    "token_endpoint_auth_method": "client_secret_basic",
    "secret_hash": None,
    "delivery_mode": "poll",
    "notification_endpoint": None,
    "logo_uri": None,
    "policy_uri": None,
    "jwks": None,  # nullable JSON: SQL NULL
    "jwks_uri": None,
    "user_code_parameter": True,
    "request_signing_alg": None,
    "id_token_signed_response_alg": "RS256",
    "scopes": ["openid", 'quo"ted', "é"],
    "hint_token_issuers": [{"issuer": "https://idp.example", "jwks": {"keys": []}, "n": 1.25}],
    "authorization_details_types": [],
    "created_at": 1 / 3,
    "updated_at": 1_800_000_000.123456,
    "binding_code_choice": False,
    "require_user_verification": True,
}
GET_CLIENT = select(clients).where(clients.c.client_id == bindparam("b_id"))
SET_NAME = (
    update(clients)
    .where(clients.c.client_id == bindparam("b_id"), clients.c.name == bindparam("b_old"))
    .values(name=bindparam("b_new"))
)
REQUEST = {column.name: None for column in auth_requests.c} | {
    "id_hash": "h1", "client_id": "c1", "subject": "s", "scope": ["openid"],
    "delivery_mode": "poll", "created_at": 1.0, "expires_at": 2.0, "interval": 5,
    "state": "pending", "acr_values": [], "amr": [],
}  # fmt: skip
UNREACHABLE = "postgresql+asyncpg://postgres@127.0.0.1:1/nothing"

Databases = tuple[LeanPostgresDatabase, AsyncEngine]


@pytest.fixture
async def databases(postgres_url: str, anyio_backend: str) -> AsyncIterator[Databases]:
    """The lean database and SQLAlchemy's engine on the same (emptied) database."""
    db = DatabaseSettings(url=postgres_url, pool_size=2)
    lean = open_database(db)
    assert isinstance(lean, LeanPostgresDatabase)
    engine = create_engine(db)
    try:
        async with engine.begin() as conn:
            for table in reversed(metadata.sorted_tables):
                await conn.execute(table.delete())
        yield lean, engine
    finally:
        await lean.dispose()
        await engine.dispose()


async def _lean_rows(lean: LeanPostgresDatabase, statement: Any, params: Any = None) -> list[Any]:
    async with lean.connect() as conn:
        return list((await conn.execute(statement, params)).all())


async def _engine_rows(engine: AsyncEngine, statement: Any, params: Any = None) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(statement, params)).all())


async def test_json_boolean_and_double_round_trip_as_with_sqlalchemy(databases: Databases) -> None:
    lean, engine = databases
    async with lean.begin() as conn:
        await conn.execute(insert_into(clients), CLIENT)
    async with engine.begin() as conn:
        await conn.execute(insert_into(clients), {**CLIENT, "client_id": "c2"})
    for client_id in ("c1", "c2"):
        for _ in range(2):  # the second run takes the statement cache's fast path
            (ours,) = await _lean_rows(lean, GET_CLIENT, {"b_id": client_id})
            (theirs,) = await _engine_rows(engine, GET_CLIENT, {"b_id": client_id})
            assert (
                dict(ours._mapping) == dict(theirs._mapping) == {**CLIENT, "client_id": client_id}
            )
            assert [type(v) for v in ours] == [type(v) for v in theirs]
    # The stored JSON text is the same whoever wrote it: nothing was encoded twice.
    stored = text(
        "SELECT jwks IS NULL, scopes::text, hint_token_issuers::text, created_at "
        "FROM clients ORDER BY client_id"
    )
    by_lean, by_engine = await _engine_rows(engine, stored)
    assert tuple(by_lean) == tuple(by_engine)
    assert by_lean[0] is True


async def test_jsonb_and_server_typed_results_come_back_as_with_sqlalchemy(
    databases: Databases,
) -> None:
    lean, engine = databases
    value = {"a": [1, "é", None], "b": {"c": 2.5}}
    as_jsonb = select(bindparam("v", type_=JSONB).label("j"))
    assert await _lean_rows(lean, as_jsonb, {"v": value}) == [(value,)]
    assert await _engine_rows(engine, as_jsonb, {"v": value}) == [(value,)]
    # A Double read from a NUMERIC expression: SQLAlchemy converts by the server's type.
    as_float = select(type_coerce(cast(bindparam("n", type_=Double()), Numeric(10, 2)), Double))
    (ours,) = await _lean_rows(lean, as_float, {"n": 1.5})
    (theirs,) = await _engine_rows(engine, as_float, {"n": 1.5})
    assert ours == theirs == (1.5,)
    assert type(ours[0]) is type(theirs[0]) is float


async def test_a_conditional_update_reports_its_row_count(databases: Databases) -> None:
    lean, _ = databases
    async with lean.begin() as conn:
        await conn.execute(insert_into(clients), CLIENT)
        await conn.execute(insert_into(clients), {**CLIENT, "client_id": "c2"})
    params = {"b_id": "c1", "b_old": CLIENT["name"], "b_new": "Bank 2"}
    for expected in (1, 0, 0):  # then the name is no longer the old one
        async with lean.begin() as conn:
            assert (await conn.execute(SET_NAME, params)).rowcount == expected
    async with lean.begin() as conn:
        result = await conn.execute(update(clients).values(logo_uri="https://logo.example"))
    assert result.rowcount == 2


async def test_key_violations_raise_sqlalchemys_integrity_error(databases: Databases) -> None:
    lean, _ = databases
    async with lean.begin() as conn:
        await conn.execute(insert_into(clients), CLIENT)
    with pytest.raises(IntegrityError):  # duplicate primary key
        async with lean.begin() as conn:
            await conn.execute(insert_into(clients), CLIENT)
    event = {"id_hash": "nobody", "at": 1.0, "kind": "created", "detail": {}}
    with pytest.raises(IntegrityError):  # no such request: the foreign key holds
        async with lean.begin() as conn:
            await conn.execute(insert_into(timeline_events), event)
    assert len(await _lean_rows(lean, select(clients.c.client_id))) == 1  # still usable


async def test_an_error_in_a_block_rolls_back_all_of_it(databases: Databases) -> None:
    lean, engine = databases
    with pytest.raises(RuntimeError):
        async with lean.begin() as conn:
            await conn.execute(insert_into(clients), CLIENT)
            raise RuntimeError("after the insert")
    with pytest.raises(IntegrityError):
        async with lean.begin() as conn:
            await conn.execute(insert_into(clients), {**CLIENT, "client_id": "c2"})
            await conn.execute(insert_into(clients), {**CLIENT, "client_id": "c2"})
    assert await _engine_rows(engine, select(clients.c.client_id)) == []


async def test_reads_see_committed_data_only(databases: Databases) -> None:
    lean, _ = databases
    async with lean.begin() as conn:
        await conn.execute(insert_into(clients), CLIENT)
        assert len(await _lean_rows(lean, GET_CLIENT, {"b_id": "c1"})) == 0  # not yet
        (row,) = (await conn.execute(GET_CLIENT, {"b_id": "c1"})).all()  # its own write
        assert row.client_id == "c1"
    assert len(await _lean_rows(lean, GET_CLIENT, {"b_id": "c1"})) == 1


async def test_a_list_of_parameters_is_executemany(databases: Databases) -> None:
    lean, engine = databases
    async with lean.begin() as conn:
        await conn.execute(insert_into(auth_requests), REQUEST)
    timeline = select(timeline_events.c.kind, timeline_events.c.detail).order_by(
        timeline_events.c.id
    )
    for _ in range(2):  # first sight, then the fast path
        events = [
            {"id_hash": "h1", "at": float(n), "kind": f"k{n}", "detail": {"n": n}} for n in range(3)
        ]
        async with lean.begin() as conn:
            await conn.execute(insert_into(timeline_events), events)
    expected = [(f"k{n}", {"n": n}) for n in range(3)] * 2
    assert [tuple(r) for r in await _lean_rows(lean, timeline)] == expected
    assert [tuple(r) for r in await _engine_rows(engine, timeline)] == expected


async def test_expanding_in_lists(databases: Databases) -> None:
    lean, engine = databases
    async with lean.begin() as conn:
        for n in range(4):
            await conn.execute(insert_into(clients), {**CLIENT, "client_id": f"c{n}"})
    by_ids = (
        select(clients.c.client_id)
        .where(clients.c.client_id.in_(bindparam("ids", expanding=True)))
        .order_by(clients.c.client_id)
    )
    for ids in (["c1", "c3"], ["c2"], [], ["c0", "c1", "c2", "nobody"]):
        expected = await _engine_rows(engine, by_ids, {"ids": ids})
        assert await _lean_rows(lean, by_ids, {"ids": ids}) == expected
        assert [row.client_id for row in expected] == sorted(set(ids) - {"nobody"})
    for ids in (["c0"], ["c1", "c2"]):  # a literal list: a new statement object per call
        literal = select(clients.c.client_id).where(clients.c.client_id.in_(ids))
        assert sorted(r.client_id for r in await _lean_rows(lean, literal)) == ids


async def test_statements_built_per_call_take_their_own_values(databases: Databases) -> None:
    """Statements cached by SQLAlchemy's cache key run with the values of each new object."""
    lean, _ = databases
    async with lean.begin() as conn:
        await conn.execute(insert_into(clients), CLIENT)
    for name in ("one", "two", "three"):
        async with lean.begin() as conn:
            await conn.execute(update(clients).where(clients.c.client_id == "c1").values(name=name))
        named = select(func.count()).where(clients.c.name == name)
        async with lean.connect() as conn:
            assert await conn.scalar(named) == 1


async def test_text_statements(databases: Databases) -> None:
    lean, _ = databases
    async with lean.connect() as conn:
        row = (await conn.execute(text("SELECT 1 AS one, 'x' AS two"))).first()
        assert (row.one, row.two) == (1, "x")
        await conn.execute(insert_into(clients), [CLIENT, {**CLIENT, "client_id": "c2"}])
        delete = text("DELETE FROM clients WHERE client_id = :c")
        counts = [(await conn.execute(delete, {"c": c})).rowcount for c in ("c1", "c2", "c2")]
    assert counts == [1, 1, 0]
    assert await _lean_rows(lean, select(clients.c.client_id)) == []


async def test_checkouts_beyond_the_pool_size_wait_for_a_connection(
    databases: Databases,
) -> None:
    lean, _ = databases  # two connections

    async def backend_pid() -> int:
        async with lean.begin() as conn:
            pid = await conn.scalar(text("SELECT pg_backend_pid()"))
            await conn.execute(text("SELECT pg_sleep(0.05)"))
            return int(pid)

    pids = await asyncio.gather(*(backend_pid() for _ in range(6)))
    assert len(set(pids)) == 2


async def test_a_cancelled_block_is_rolled_back_and_its_connection_recovers(
    databases: Databases,
) -> None:
    lean, engine = databases

    async def slow_insert() -> None:
        async with lean.begin() as conn:
            await conn.execute(insert_into(clients), CLIENT)
            await conn.execute(text("SELECT pg_sleep(5)"))

    task = asyncio.create_task(slow_insert())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _engine_rows(engine, select(clients.c.client_id)) == []
    for _ in range(3):  # both connections work again
        assert await _lean_rows(lean, text("SELECT 1")) == [(1,)]


async def test_a_connection_the_server_closed_while_idle_is_replaced(
    databases: Databases,
) -> None:
    lean, engine = databases
    (before,) = await _lean_rows(lean, text("SELECT pg_backend_pid()"))
    alive = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
    async with engine.connect() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": before[0]})
        for _ in range(100):
            if not await conn.scalar(alive, {"pid": before[0]}):
                break
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.1)  # the loop sees the socket close
    (after,) = await _lean_rows(lean, text("SELECT pg_backend_pid()"))
    assert after[0] != before[0]


async def test_ping_is_false_when_postgresql_is_unreachable(postgres_url: str) -> None:
    reachable = SqlStorage(open_database(DatabaseSettings(url=postgres_url)))
    unreachable = SqlStorage(open_database(DatabaseSettings(url=UNREACHABLE)))
    try:
        assert await reachable.ping() is True
        assert await unreachable.ping() is False
    finally:
        await reachable.close()
        await unreachable.close()


async def test_a_unix_socket_url_reaches_the_same_database(postgres_url: str) -> None:
    """``?host=<socket directory>`` (operator guide: PostgreSQL on the same host) connects
    through the server's Unix socket, for the stores and the event bus's asyncpg alike."""
    tcp = open_database(DatabaseSettings(url=postgres_url))
    assert isinstance(tcp, LeanPostgresDatabase)
    try:
        ((directories,),) = await _lean_rows(tcp, text("SHOW unix_socket_directories"))
        ((over_tcp,),) = await _lean_rows(tcp, text("SELECT inet_client_addr()::text"))
    finally:
        await tcp.dispose()
    assert over_tcp is not None and over_tcp.startswith("127.0.0.1")
    directory = str(directories).split(",")[0].strip()
    if not directory:
        pytest.skip("this PostgreSQL listens on no Unix socket")
    name = postgres_url.rsplit("/", 1)[1]
    socket_url = f"postgresql+asyncpg://postgres@/{name}?host={directory}"
    over_socket = open_database(DatabaseSettings(url=socket_url))
    assert isinstance(over_socket, LeanPostgresDatabase)
    try:
        assert await SqlStorage(over_socket).ping() is True
        ((client_addr, database),) = await _lean_rows(
            over_socket, text("SELECT inet_client_addr(), current_database()")
        )
    finally:
        await over_socket.dispose()
    assert client_addr is None  # NULL: not a TCP connection
    assert database == name
    bus_connection = await asyncpg.connect(asyncpg_dsn(socket_url))
    try:
        assert await bus_connection.fetchval("SELECT inet_client_addr()") is None
    finally:
        await bus_connection.close()
