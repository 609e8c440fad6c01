"""Engines for the two supported drivers, configured the way Backchannel needs them.

The stores talk to a ``Database``: on PostgreSQL that is ``LeanPostgresDatabase``, statements
compiled by SQLAlchemy run straight on a pool of asyncpg connections (see ``lean_postgres``);
on SQLite it is ``LoopSqliteDatabase``, one stdlib connection used from the event-loop thread
(see ``loop_sqlite``). Alembic keeps using SQLAlchemy's async engine for both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from sqlalchemy import event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.sql.base import Executable

from backchannel.settings import DatabaseSettings

if TYPE_CHECKING:
    from sqlalchemy.engine.interfaces import _CoreAnyExecuteParams, _CoreSingleExecuteParams


class MappingRows(Protocol):
    """Rows as mappings from column key to value (SQLAlchemy's ``RowMapping`` or a dict)."""

    def __iter__(self) -> Iterator[Any]: ...

    def first(self) -> Any: ...

    def all(self) -> Sequence[Any]: ...


class Result(Protocol):
    """The part of SQLAlchemy's ``CursorResult`` the stores use; SQLite's prepared statements
    (``prepared.FastRows``) offer the same."""

    @property
    def rowcount(self) -> int: ...

    def first(self) -> Any: ...

    def all(self) -> Sequence[Any]: ...

    def scalar(self) -> Any: ...

    def scalar_one(self) -> Any: ...

    def scalars(self) -> Iterable[Any]: ...

    def mappings(self) -> MappingRows: ...


class DatabaseConnection(Protocol):
    """What the stores do with a connection: run a statement, read one value."""

    async def execute(
        self, statement: Executable, parameters: _CoreAnyExecuteParams | None = None
    ) -> Result: ...

    async def scalar(
        self, statement: Executable, parameters: _CoreSingleExecuteParams | None = None
    ) -> Any: ...


class Database(Protocol):
    """What the stores need from an engine. ``begin()`` is one committed transaction;
    ``connect()`` runs each statement in autocommit: reads, and on PostgreSQL the single
    statements of ``single_statement``."""

    @property
    def dialect(self) -> Dialect: ...

    def begin(self) -> AbstractAsyncContextManager[DatabaseConnection]: ...

    def connect(self) -> AbstractAsyncContextManager[DatabaseConnection]: ...

    async def dispose(self) -> None: ...


def json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode("utf-8")


JSON_OPTIONS: dict[str, Callable[..., Any]] = {
    "json_serializer": json_dumps,
    "json_deserializer": orjson.loads,
}


def sqlite_pragmas(db: DatabaseSettings, *, busy_timeout_ms: int | None = None) -> tuple[str, ...]:
    """``busy_timeout_ms`` overrides the setting (the loop connection waits on its own)."""
    timeout = db.sqlite_busy_timeout_ms if busy_timeout_ms is None else busy_timeout_ms
    return (
        "PRAGMA journal_mode=WAL",
        f"PRAGMA busy_timeout={int(timeout)}",
        "PRAGMA synchronous=NORMAL",
        "PRAGMA foreign_keys=ON",
    )


def open_database(db: DatabaseSettings) -> Database:
    """The ``Database`` the stores use at run time."""
    if db.is_sqlite:
        from backchannel.storage.sql.loop_sqlite import LoopSqliteDatabase

        return LoopSqliteDatabase(db)
    from backchannel.storage.sql.lean_postgres import LeanPostgresDatabase

    return LeanPostgresDatabase(db)


def create_engine(db: DatabaseSettings) -> AsyncEngine:
    """An async engine: SQLite (file created on demand, WAL) or PostgreSQL (pooled).
    Used for migrations."""
    if db.is_sqlite:
        return _sqlite_engine(db)
    return create_async_engine(db.url, pool_size=db.pool_size, **JSON_OPTIONS)


def _sqlite_engine(db: DatabaseSettings) -> AsyncEngine:
    create_parent_directory(db.url)
    engine = create_async_engine(db.url, **JSON_OPTIONS)
    pragmas = sqlite_pragmas(db)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for pragma in pragmas:
            cursor.execute(pragma)
        cursor.close()

    return engine


def create_parent_directory(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def read_engine(engine: Database) -> Database:
    """The engine for single-statement reads, in autocommit: no BEGIN and ROLLBACK round
    trips. ``LeanPostgresDatabase`` and ``LoopSqliteDatabase`` already read that way in
    ``connect()``; a SQLAlchemy engine on PostgreSQL is asked to (sharing its pool)."""
    if isinstance(engine, AsyncEngine) and engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine
