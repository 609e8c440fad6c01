"""SQLite on the event-loop thread: one stdlib (pysqlite) connection per process.

Why not aiosqlite: every statement there is a hand-off to a worker thread and back, and the
wake-ups and GIL ping-pong cost far more CPU than the statement itself (an indexed SQLite
statement takes 10-40 µs). Here a statement runs inline. Each block below runs to its end
without giving the loop away (``execute`` never suspends), so a transaction holds SQLite's
write lock only for the microseconds it computes; with WAL and ``synchronous=NORMAL`` a
commit does not wait for the disk. An ``asyncio.Lock`` still serialises blocks, in case a
caller ever awaits something else inside one.

Write transactions start with ``BEGIN IMMEDIATE``: they take the write lock up front (waiting
up to ``busy_timeout`` for another process's writer) instead of failing with
``database is locked`` when a deferred transaction tries to upgrade its read lock. Reads run
in the driver's autocommit mode: no BEGIN, no ROLLBACK.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, CursorResult, Dialect, make_url
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.base import Executable

from backchannel.settings import DatabaseSettings
from backchannel.storage.sql.engine import (
    JSON_OPTIONS,
    DatabaseConnection,
    create_parent_directory,
    sqlite_pragmas,
)

if TYPE_CHECKING:
    from sqlalchemy.engine.interfaces import _CoreAnyExecuteParams, _CoreSingleExecuteParams


class LoopSqliteConnection:
    """The async face of the pinned connection; every call completes without suspending."""

    __slots__ = ("_sync",)

    def __init__(self, sync: Connection) -> None:
        self._sync = sync

    async def execute(
        self, statement: Executable, parameters: _CoreAnyExecuteParams | None = None
    ) -> CursorResult[Any]:
        return self._sync.execute(statement, parameters)

    async def scalar(
        self, statement: Executable, parameters: _CoreSingleExecuteParams | None = None
    ) -> Any:
        return self._sync.scalar(statement, parameters)


class LoopSqliteDatabase:
    """A ``Database`` over one SQLite connection used only from the event-loop thread."""

    def __init__(self, db: DatabaseSettings) -> None:
        create_parent_directory(db.url)
        url = make_url(db.url).set(drivername="sqlite+pysqlite")
        self._engine = create_engine(
            url,
            poolclass=StaticPool,
            # The driver's own transaction handling off: BEGIN and COMMIT are ours.
            connect_args={"isolation_level": None},
            **JSON_OPTIONS,
        )
        pragmas = sqlite_pragmas(db)

        @event.listens_for(self._engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            for pragma in pragmas:
                dbapi_connection.execute(pragma).close()

        self._lock = asyncio.Lock()
        self._connection: Connection | None = None
        self._wrapped: LoopSqliteConnection
        self._dbapi: Any

    @property
    def dialect(self) -> Dialect:
        return self._engine.dialect

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[DatabaseConnection]:
        async with self._lock:
            conn, wrapped = self._pinned()
            # Straight to the driver: SQLAlchemy (re)starts its own bookkeeping on the first
            # statement, and its commit()/rollback() reach the driver's, which end ours.
            self._dbapi.execute("BEGIN IMMEDIATE").close()
            try:
                yield wrapped
            except BaseException:
                conn.rollback()
                if self._dbapi.in_transaction:  # no statement ran: SQLAlchemy saw no BEGIN
                    self._dbapi.rollback()
                raise
            conn.commit()
            if self._dbapi.in_transaction:
                self._dbapi.commit()

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[DatabaseConnection]:
        """Reads, in the driver's autocommit mode. Nothing to end afterwards: outside BEGIN
        there is no SQLite transaction, and SQLAlchemy's bookkeeping ends at the next
        ``begin()``'s commit."""
        async with self._lock:
            yield self._pinned()[1]

    async def dispose(self) -> None:
        async with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
            self._engine.dispose()

    def _pinned(self) -> tuple[Connection, LoopSqliteConnection]:
        if self._connection is None:
            self._connection = self._engine.connect()
            self._wrapped = LoopSqliteConnection(self._connection)
            self._dbapi = self._connection.connection.dbapi_connection
        return self._connection, self._wrapped
