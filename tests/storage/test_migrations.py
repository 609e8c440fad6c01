"""The Alembic migrations build exactly the schema of ``storage/sql/tables.py``, and the
``backchannel db`` commands drive them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from backchannel.settings import DatabaseSettings
from backchannel.storage import migrate
from backchannel.storage.sql.engine import create_engine
from backchannel.storage.sql.tables import kept_generation_triggers, metadata
from tests.support.databases import (
    PG_UNAVAILABLE,
    postgres_available,
    postgres_database,
    sqlite_url,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def empty_database(
    request: pytest.FixtureRequest, tmp_path: Path, anyio_backend: str
) -> AsyncIterator[DatabaseSettings]:
    if request.param == "sqlite":
        yield DatabaseSettings(url=sqlite_url(tmp_path))
        return
    if not postgres_available():
        pytest.skip(PG_UNAVAILABLE)
    async with postgres_database() as url:
        yield DatabaseSettings(url=url)


def _schema(connection: Connection) -> dict[str, Any]:
    inspector = inspect(connection)
    tables = set(inspector.get_table_names()) - {"alembic_version"}
    return {
        name: {
            "columns": {c["name"]: c["nullable"] for c in inspector.get_columns(name)},
            "indexes": {
                i["name"]
                for i in inspector.get_indexes(name)
                if not i.get("duplicates_constraint")  # PostgreSQL's index behind a UNIQUE
            },
            "unique": {tuple(u["column_names"]) for u in inspector.get_unique_constraints(name)},
        }
        for name in tables
    }


def _expected_schema() -> dict[str, Any]:
    return {
        table.name: {
            "columns": {c.name: c.nullable for c in table.columns},
            "indexes": {i.name for i in table.indexes},
            "unique": {(c.name,) for c in table.columns if c.unique},
        }
        for table in metadata.sorted_tables
    }


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def _inspect(db: DatabaseSettings, how: Any) -> Any:
    engine = create_engine(db)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(how)
    finally:
        await engine.dispose()


async def test_migration_builds_the_tables_of_tables_py(empty_database: DatabaseSettings) -> None:
    await migrate.upgrade(empty_database)
    assert await _inspect(empty_database, _schema) == _expected_schema()
    assert await _inspect(empty_database, _differences) == []


async def test_upgrade_reaches_head_and_is_idempotent(empty_database: DatabaseSettings) -> None:
    assert await migrate.current(empty_database) is None
    head = migrate.head_revision()
    assert await migrate.upgrade(empty_database) == head
    assert await migrate.upgrade(empty_database) == head
    assert await migrate.current(empty_database) == head


async def test_upgrade_if_embedded_migrates_sqlite_and_creates_its_folder(
    tmp_path: Path,
) -> None:
    db = DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path / 'var' / 'nested' / 'bc.db'}")
    await migrate.upgrade_if_embedded(db)
    assert (tmp_path / "var" / "nested" / "bc.db").is_file()
    assert await migrate.current(db) == migrate.head_revision()


def _backchannel(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "BACKCHANNEL_DATABASE__URL": sqlite_url(tmp_path),
        "BACKCHANNEL_DEV_MODE": "true",
        "COLUMNS": "200",
    }
    code = "from backchannel.cli.main import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.slow
def test_db_commands_upgrade_then_report_current(tmp_path: Path) -> None:
    head = migrate.head_revision()
    before = _backchannel(tmp_path, "db", "current")
    assert before.returncode == 1, before.stderr
    assert "not migrated" in before.stdout
    upgraded = _backchannel(tmp_path, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"database at revision {head}" in upgraded.stdout
    after = _backchannel(tmp_path, "db", "current")
    assert after.returncode == 0, after.stderr
    assert f"{head} up to date" in after.stdout


def _kept_triggers(connection: Connection) -> set[str]:
    rows = connection.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'kept_%'"
    )
    return {" ".join(sql.split()) for (sql,) in rows}


def _downgrade_to_0007(connection: Connection, config: Any) -> None:
    config.attributes["connection"] = connection
    command.downgrade(config, "0007")


async def test_sqlite_triggers_are_those_of_tables_py_and_0008_comes_down(
    tmp_path: Path,
) -> None:
    """Migrations 0007 and 0008 leave the triggers ``create_all`` makes (the device
    heartbeat column excluded from the devices UPDATE one); going down to 0007 puts back
    the trigger on any update of a device."""
    db = DatabaseSettings(url=sqlite_url(tmp_path))
    await migrate.upgrade(db)
    triggers = await _inspect(db, _kept_triggers)
    assert triggers == {" ".join(t.split()) for t in kept_generation_triggers()}
    assert any("AFTER UPDATE OF device_id, subject" in t for t in triggers)
    engine = create_engine(db)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_downgrade_to_0007, migrate.alembic_config(db))
    finally:
        await engine.dispose()
    devices_update = {t for t in await _inspect(db, _kept_triggers) if "devices_update" in t}
    assert devices_update == {
        "CREATE TRIGGER kept_generation_devices_update AFTER UPDATE ON devices "
        "BEGIN UPDATE kept_generation SET value = value + 1 WHERE id = 1; END"
    }
