"""The ``storage`` fixture: every test using it runs on memory, SQLite and PostgreSQL.

Use it from a conftest.py::

    from tests.support.fixtures import postgres_url, storage  # noqa: F401

PostgreSQL is skipped (with the reason shown) only when the server does not answer. One
database is created and migrated per test session; each test starts with empty tables.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from backchannel.protocol.ports import Storage
from backchannel.settings import DatabaseSettings
from backchannel.storage import memory_storage, migrate, open_storage
from backchannel.storage.sql import SqlStorage
from backchannel.storage.sql.loop_sqlite import LoopSqliteDatabase
from backchannel.storage.sql.tables import metadata
from tests.support.databases import (
    PG_UNAVAILABLE,
    create_postgres_database,
    drop_postgres_database,
    postgres_available,
    run_in_own_loop,
    sqlite_url,
)

BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A migrated PostgreSQL database for the whole session, dropped at the end."""
    if not postgres_available():
        pytest.skip(PG_UNAVAILABLE)
    url = run_in_own_loop(create_postgres_database)
    try:
        run_in_own_loop(lambda: migrate.upgrade(DatabaseSettings(url=url)))
        yield url
    finally:
        run_in_own_loop(lambda: drop_postgres_database(url))


@pytest.fixture(params=BACKENDS)
async def storage(
    request: pytest.FixtureRequest, tmp_path: Path, anyio_backend: str
) -> AsyncIterator[Storage]:
    if request.param == "memory":
        yield memory_storage()
        return
    if request.param == "sqlite":
        db = DatabaseSettings(url=sqlite_url(tmp_path))
        await migrate.upgrade(db)
    else:
        db = DatabaseSettings(url=request.getfixturevalue("postgres_url"))
    sql = await open_storage(db)
    if isinstance(sql, SqlStorage) and isinstance(sql.engine, LoopSqliteDatabase):
        # The server runs repeated statements prepared (storage/sql/prepared.py): test that.
        sql.engine.statements.prepare_at_first_sight = True
    try:
        if request.param == "postgres":
            await empty_tables(sql)
        yield sql
    finally:
        await sql.close()


async def empty_tables(storage: Storage) -> None:
    assert isinstance(storage, SqlStorage)
    # DELETE is much cheaper than TRUNCATE on tables this small.
    async with storage.engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            await conn.execute(table.delete())
