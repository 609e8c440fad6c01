"""Schema migrations (Alembic), run from code: no alembic.ini is needed at run time."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from backchannel.settings import DatabaseSettings
from backchannel.storage.sql.engine import create_engine

MIGRATIONS = Path(__file__).parent / "sql" / "migrations"


def alembic_config(db: DatabaseSettings | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if db is not None:
        # ``%`` is Alembic's interpolation character; encoded passwords may contain it.
        config.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The newest revision the code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("no migrations found")
    return head


async def upgrade(db: DatabaseSettings) -> str:
    """Bring the schema to the newest revision; returns that revision."""
    config = alembic_config(db)
    engine = create_engine(db)
    try:
        async with engine.begin() as connection:
            return await connection.run_sync(_upgrade_on, config)
    finally:
        await engine.dispose()


async def current(db: DatabaseSettings) -> str | None:
    """The revision the database is at (None when it was never migrated)."""
    engine = create_engine(db)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_current_revision)
    finally:
        await engine.dispose()


async def upgrade_if_embedded(db: DatabaseSettings) -> None:
    """Embedded SQLite migrates itself on start; PostgreSQL is migrated by the operator."""
    if db.is_sqlite:
        await upgrade(db)


def _upgrade_on(connection: Connection, config: Config) -> str:
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
    revision = _current_revision(connection)
    if revision is None:
        raise RuntimeError("the upgrade left no revision")
    return revision


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
