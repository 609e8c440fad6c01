"""SQLite on the event-loop thread: one stdlib (pysqlite) connection per process.

Why not aiosqlite: every statement there is a hand-off to a worker thread and back, and the
wake-ups and GIL ping-pong cost far more CPU than the statement itself (an indexed SQLite
statement takes 10-40 µs). Here a statement runs inline. Each block below runs to its end
without giving the loop away (``execute`` never suspends), so a transaction holds SQLite's
write lock only for the microseconds it computes; with WAL and ``synchronous=NORMAL`` a
commit does not wait for the disk. An ``asyncio.Lock`` still serialises blocks, in case a
caller ever awaits something else inside one.

Write transactions start with ``BEGIN IMMEDIATE``: they take the write lock up front instead
of failing with ``database is locked`` when a deferred transaction tries to upgrade its read
lock. While another process (a second worker, the CLI) holds that lock, the transaction waits
for it asynchronously, retrying for up to ``busy_timeout``; the loop keeps serving. Reads run
in the driver's autocommit mode: no BEGIN, no ROLLBACK.

Statements executed again and again skip SQLAlchemy's execution machinery (``prepared``).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from sqlalchemy import create_engine, event, exc
from sqlalchemy.engine import Connection, Dialect, make_url
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.base import Executable

from backchannel.settings import DatabaseSettings
from backchannel.storage.sql.engine import (
    JSON_OPTIONS,
    DatabaseConnection,
    Result,
    create_parent_directory,
    sqlite_pragmas,
)
from backchannel.storage.sql.prepared import StatementCache
from backchannel.storage.sql.wal_checkpointer import SQLITE_PAGE_SIZE, WalCheckpointer

_KEPT_GENERATION = "SELECT value FROM kept_generation WHERE id = 1"

if TYPE_CHECKING:
    from sqlalchemy.engine.interfaces import _CoreAnyExecuteParams, _CoreSingleExecuteParams


# The driver binds exact int, float, str and bytearray values directly; anything else goes
# through its adapter registry, and where that has no entry it looks for an ``__adapt__``
# on its protocol class and formats an AttributeError for each such value before binding
# it as it is. The stores bind many NULLs and booleans (~30 per poll flow): with an entry
# for both they are bound as before (NULL, 1 / 0) without that exception. Built-in
# callables: an empty dict's ``get`` gives None, ``int(True)`` is 1.
_NOTHING_TO_ADAPT: dict[None, None] = {}
sqlite3.register_adapter(type(None), _NOTHING_TO_ADAPT.get)
sqlite3.register_adapter(bool, int)


def _retry_delay(attempt: int) -> float:
    """While another process holds the write lock: first only let the loop run what is
    ready (that writer's transactions last microseconds), then back off up to 5 ms."""
    if attempt <= 20:
        return 0
    return min(0.0005 * 2.0 ** (attempt - 21), 0.005)


class _LockedError(sqlite3.OperationalError):
    def __init__(self) -> None:
        super().__init__("database is locked")


class LoopSqliteConnection:
    """The async face of the pinned connection; every call completes without suspending.
    Statements executed repeatedly run straight on the driver (``prepared``)."""

    __slots__ = ("_busy_timeout_s", "_driver", "_statements", "_sync")

    def __init__(
        self,
        sync: Connection,
        driver: sqlite3.Connection,
        statements: StatementCache,
        busy_timeout_s: float,
    ) -> None:
        self._sync = sync
        self._driver = driver
        self._statements = statements
        self._busy_timeout_s = busy_timeout_s

    async def execute(
        self, statement: Executable, parameters: _CoreAnyExecuteParams | None = None
    ) -> Result:
        try:
            return self._run(statement, parameters)
        except exc.OperationalError as error:
            if self._driver.in_transaction or not _is_busy(error.orig):
                raise
        return await self._retry_read(statement, parameters)

    async def scalar(
        self, statement: Executable, parameters: _CoreSingleExecuteParams | None = None
    ) -> Any:
        return (await self.execute(statement, parameters)).scalar()

    async def _retry_read(
        self, statement: Executable, parameters: _CoreAnyExecuteParams | None
    ) -> Result:
        """A read outside a transaction found the database busy (in WAL mode only while a
        connection recovers or closes the WAL): wait for it like SQLite's busy handler
        would, without blocking the loop."""
        deadline = time.monotonic() + self._busy_timeout_s
        attempts = 0
        while True:
            attempts += 1
            await asyncio.sleep(_retry_delay(attempts))
            try:
                return self._run(statement, parameters)
            except exc.OperationalError as error:
                if not _is_busy(error.orig) or time.monotonic() >= deadline:
                    raise

    def _run(self, statement: Executable, parameters: _CoreAnyExecuteParams | None) -> Result:
        if parameters is None:
            parameters = {}
        if isinstance(parameters, Mapping):
            prepared = self._statements.lookup(statement, tuple(parameters))
            if prepared is not None:
                return prepared.run(self._driver, parameters)
        elif _same_keys(parameters):
            keys = tuple(parameters[0])
            prepared = self._statements.lookup(statement, keys, many=True)
            if prepared is not None:
                return prepared.run_many(self._driver, parameters)
        return self._sync.execute(statement, parameters)


def _is_busy(error: BaseException | None) -> bool:
    return isinstance(error, sqlite3.OperationalError) and (
        error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
    )


def _same_keys(rows: Sequence[Any]) -> bool:
    """A non-empty list of parameter mappings that all name the same parameters."""
    if not rows or not isinstance(rows[0], Mapping):
        return False
    keys = rows[0].keys()
    return all(isinstance(row, Mapping) and row.keys() == keys for row in rows)


class _WriteBlock:
    """``async with database.begin()``: one committed transaction (rolled back on error)."""

    __slots__ = ("_database",)

    def __init__(self, database: LoopSqliteDatabase) -> None:
        self._database = database

    async def __aenter__(self) -> DatabaseConnection:
        await self._database._lock_for_writing()
        return self._database._pinned()[1]

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        try:
            self._database._end_transaction(commit=exc_type is None)
        finally:
            self._database._lock.release()


class _ReadBlock:
    """``async with database.connect()``: reads, holding the connection for the block."""

    __slots__ = ("_database",)

    def __init__(self, database: LoopSqliteDatabase) -> None:
        self._database = database

    async def __aenter__(self) -> DatabaseConnection:
        await self._database._lock.acquire()
        try:
            return self._database._pinned()[1]
        except BaseException:
            self._database._lock.release()
            raise

    async def __aexit__(self, *_: object) -> None:
        self._database._lock.release()


def _checkpointer(path: str | None, db: DatabaseSettings) -> WalCheckpointer | None:
    """None for an in-memory database: it has no WAL."""
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return WalCheckpointer(
        path,
        interval_s=db.sqlite_checkpoint_interval_ms / 1000,
        restart_pages=db.sqlite_wal_limit_mib * 1024 * 1024 // SQLITE_PAGE_SIZE,
        busy_timeout_ms=db.sqlite_busy_timeout_ms,
    )


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
        # No busy wait inside SQLite: it would sleep on the loop thread. Waits for another
        # process's lock are ours, asynchronous (``_lock_for_writing``, ``_retry_read``).
        # Nor checkpoints: they sync the disk; a thread of their own runs them. A page
        # cache large enough for the indexes that requests reach at random places (the
        # primary keys of random auth_req_id hashes, the timeline's and the consents'),
        # so that with many requests stored a lookup is not a read from the file.
        pragmas = (
            *sqlite_pragmas(db, busy_timeout_ms=0),
            "PRAGMA wal_autocheckpoint=0",
            f"PRAGMA cache_size={-1024 * db.sqlite_cache_mib}",
        )

        @event.listens_for(self._engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            for pragma in pragmas:
                dbapi_connection.execute(pragma).close()

        self._busy_timeout_s = db.sqlite_busy_timeout_ms / 1000
        self.checkpointer = _checkpointer(url.database, db)
        self.statements = StatementCache(self._engine.dialect)
        self._lock = asyncio.Lock()
        self._turn_version: int | None = None  # data_version in this turn of the loop
        self._generation_seen_at: int | None = None  # the data_version it was read at
        self._generation = 0  # kept_generation's value then
        self._connection: Connection | None = None
        self._wrapped: LoopSqliteConnection
        self._dbapi: Any

    @property
    def dialect(self) -> Dialect:
        return self._engine.dialect

    def begin(self) -> AbstractAsyncContextManager[DatabaseConnection]:
        return _WriteBlock(self)

    def data_version(self) -> int | None:
        """SQLite's ``PRAGMA data_version`` for the loop connection: it changes whenever
        another connection (another worker, the CLI, another process) commits, and never
        for this connection's own commits. None when SQLite cannot answer now (busy):
        callers then read afresh. Call it inside a ``connect()`` or ``begin()`` block.

        Asked once per turn of the event loop (each ask is a statement, and in WAL mode a
        read transaction with two lock calls on the shared-memory file). Every request
        whose code runs in this turn had arrived before the answer was read: bytes that
        arrive later are read, and their request's code scheduled, after ``_new_turn``,
        which runs first in the next turn. So no request sent after a commit elsewhere is
        answered from before that commit."""
        if self._turn_version is None:
            self._pinned()
            try:
                version = int(self._dbapi.execute("PRAGMA data_version").fetchone()[0])
            except sqlite3.OperationalError:
                return None
            self._turn_version = version
            asyncio.get_running_loop().call_soon(self._new_turn)
        return self._turn_version

    def kept_version(self) -> int | None:
        """A version of the tables whose reads are kept (``tables.KEPT_TABLES``): it changes
        when another connection has committed a write to one of them. Read from the
        ``kept_generation`` row, which triggers bump, but only when ``data_version`` says
        that someone else committed at all; None when SQLite cannot answer now."""
        version = self.data_version()
        if version is None:
            return None
        if version != self._generation_seen_at:
            try:
                row = self._dbapi.execute(_KEPT_GENERATION).fetchone()
            except sqlite3.OperationalError:
                return None
            self._generation_seen_at, self._generation = version, int(row[0])
        return self._generation

    def _new_turn(self) -> None:
        self._turn_version = None

    async def _lock_for_writing(self) -> None:
        """Hold ``self._lock`` and SQLite's write lock. While another process writes, wait
        without blocking the loop: SQLite's own busy handler would sleep (1 ms and more) on
        the loop thread, stalling every request of this worker for a lock that is usually
        free again within microseconds."""
        deadline = time.monotonic() + self._busy_timeout_s
        attempts = 0
        while True:
            await self._lock.acquire()
            try:
                if self._try_begin_immediate():
                    return
            except BaseException:
                self._lock.release()
                raise
            self._lock.release()
            if time.monotonic() >= deadline:
                raise exc.OperationalError("BEGIN IMMEDIATE", None, _LockedError(), False)
            attempts += 1
            await asyncio.sleep(_retry_delay(attempts))

    def _try_begin_immediate(self) -> bool:
        """``BEGIN IMMEDIATE`` straight to the driver, without SQLite's busy wait. SQLAlchemy
        (re)starts its own bookkeeping on the first statement it runs, and its
        commit()/rollback() reach the driver's, which end ours."""
        self._pinned()
        try:
            self._dbapi.execute("BEGIN IMMEDIATE").close()
        except sqlite3.OperationalError as error:
            if not _is_busy(error):
                raise
            return False
        return True

    def connect(self) -> AbstractAsyncContextManager[DatabaseConnection]:
        """Reads, in the driver's autocommit mode. Nothing to end afterwards: outside BEGIN
        there is no SQLite transaction, and SQLAlchemy's bookkeeping ends at the next
        ``begin()``'s commit."""
        return _ReadBlock(self)

    def _end_transaction(self, commit: bool) -> None:
        conn = self._connection
        assert conn is not None
        if commit:
            try:
                conn.commit()
                if self._dbapi.in_transaction:  # no statement went through SQLAlchemy
                    self._dbapi.commit()
                return
            except BaseException:
                self._rollback(conn)
                raise
        self._rollback(conn)

    def _rollback(self, conn: Connection) -> None:
        conn.rollback()
        if self._dbapi.in_transaction:  # no statement went through SQLAlchemy
            self._dbapi.rollback()

    async def dispose(self) -> None:
        if self.checkpointer is not None:
            await asyncio.to_thread(self.checkpointer.stop)
        async with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
            self._engine.dispose()

    def _pinned(self) -> tuple[Connection, LoopSqliteConnection]:
        if self._connection is None:
            self._connection = self._engine.connect()
            self._dbapi = self._connection.connection.dbapi_connection
            self._generation_seen_at = None  # a new connection's data_version starts anew
            self._wrapped = LoopSqliteConnection(
                self._connection, self._dbapi, self.statements, self._busy_timeout_s
            )
            if self.checkpointer is not None:
                self.checkpointer.start()
        return self._connection, self._wrapped
