"""SQLite on the event-loop thread: one stdlib (pysqlite) connection per process.

Why not aiosqlite: every statement there is a hand-off to a worker thread and back, and the
wake-ups and GIL ping-pong cost far more CPU than the statement itself (an indexed SQLite
statement takes 10-40 µs). Here a statement runs inline. Each block below runs to its end
without giving the loop away (``execute`` never suspends), so a transaction holds SQLite's
write lock only for the microseconds it computes; with WAL and ``synchronous=NORMAL`` a
commit does not wait for the disk. An ``asyncio.Lock`` still serialises blocks, in case a
caller ever awaits something else inside one.

Write blocks that start in the same turn of the event loop commit together (group commit):
the first opens the transaction with ``BEGIN IMMEDIATE`` and schedules its ``COMMIT`` for
the loop's next turn; each block runs in a savepoint of its own, so an error undoes only
that block's statements; every block returns only after the ``COMMIT``, so nothing is
answered before it is durable. Sixteen bc-authorize requests arriving together cost one
commit instead of sixteen, and the pages they share (the index leaves the new rows land in)
reach the WAL once. A read that ran while a batch was open may have seen its uncommitted
rows: it too returns only after the ``COMMIT``.

While another process (a second worker, the CLI) holds the write lock, ``BEGIN IMMEDIATE``
waits for it asynchronously, retrying for up to ``busy_timeout``; the loop keeps serving.
Reads run in the driver's autocommit mode when no batch is open: no BEGIN, no ROLLBACK.

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
from backchannel.storage.sql.wal_checkpointer import WalCheckpointer

if TYPE_CHECKING:
    from sqlalchemy.engine.interfaces import _CoreAnyExecuteParams, _CoreSingleExecuteParams


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

    __slots__ = ("_busy_timeout_s", "_driver", "_statements", "_sync", "runs")

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
        self.runs = 0  # statements run so far

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
        self.runs += 1
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
    """``async with database.begin()``: the block's statements in the open batch, in a
    savepoint of their own when they join one (an error then undoes only them; the block
    that opens a batch is alone in it until it ends, so it rolls back the transaction);
    the block ends once the batch has committed."""

    __slots__ = ("_database", "_opened")

    def __init__(self, database: LoopSqliteDatabase) -> None:
        self._database = database
        self._opened = False

    async def __aenter__(self) -> DatabaseConnection:
        database = self._database
        self._opened = await database._lock_for_writing()
        if not self._opened:
            try:
                database._dbapi.execute("SAVEPOINT block").close()
            except BaseException:
                database._release_lock()
                raise
        return database._wrapped

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        database = self._database
        try:
            database._end_block(ok=exc_type is None, opened=self._opened)
        finally:
            database._release_lock()
        if exc_type is None:
            await database._committed()


class _ReadBlock:
    """``async with database.connect()``: reads, holding the connection for the block. A
    read that ran while a batch was open may have seen its writes: it ends once they are
    committed, so nobody answers with what might still be rolled back."""

    __slots__ = ("_database", "_runs")

    def __init__(self, database: LoopSqliteDatabase) -> None:
        self._database = database
        self._runs = 0

    async def __aenter__(self) -> DatabaseConnection:
        database = self._database
        await database._lock.acquire()
        try:
            connection = database._pinned()[1]
        except BaseException:
            database._release_lock()
            raise
        self._runs = connection.runs
        return connection

    async def __aexit__(self, *_: object) -> None:
        database = self._database
        database._release_lock()
        if database._batch is not None and database._wrapped.runs != self._runs:
            await database._committed()


def _checkpointer(path: str | None, db: DatabaseSettings) -> WalCheckpointer | None:
    """None for an in-memory database: it has no WAL."""
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return WalCheckpointer(
        path,
        interval_s=db.sqlite_checkpoint_interval_ms / 1000,
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
        # Nor checkpoints: they sync the disk; a thread of their own runs them.
        pragmas = (*sqlite_pragmas(db, busy_timeout_ms=0), "PRAGMA wal_autocheckpoint=0")

        @event.listens_for(self._engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            for pragma in pragmas:
                dbapi_connection.execute(pragma).close()

        self._busy_timeout_s = db.sqlite_busy_timeout_ms / 1000
        self.checkpointer = _checkpointer(url.database, db)
        self.statements = StatementCache(self._engine.dialect)
        self._lock = asyncio.Lock()
        self._batch: list[asyncio.Future[None]] | None = None  # who waits for its commit
        self._commit_due = False
        self._turn_version: int | None = None  # data_version in this turn of the loop
        self.failed_commits = 0
        self._connection: Connection | None = None
        self._wrapped: LoopSqliteConnection
        self._dbapi: Any

    @property
    def dialect(self) -> Dialect:
        return self._engine.dialect

    def begin(self) -> AbstractAsyncContextManager[DatabaseConnection]:
        return _WriteBlock(self)

    def data_version(self) -> tuple[int, int] | None:
        """SQLite's ``PRAGMA data_version`` for the loop connection, with the number of
        failed batch commits: the first changes whenever another connection (another
        worker, the CLI, another process) commits, and never for this connection's own
        commits; the second when writes this connection's reads had seen were lost. None
        when SQLite cannot answer now (busy): callers then read afresh. Call it inside a
        ``connect()`` or ``begin()`` block.

        Asked once per turn of the event loop: every request that runs in this turn
        arrived before the answer was read (data that arrives later is read in the loop's
        next turn, after ``_new_turn``), so a commit elsewhere after the answer is
        concurrent with all of them."""
        if self._turn_version is None:
            self._pinned()
            try:
                version = int(self._dbapi.execute("PRAGMA data_version").fetchone()[0])
            except sqlite3.OperationalError:
                return None
            self._turn_version = version
            asyncio.get_running_loop().call_soon(self._new_turn)
        return self._turn_version, self.failed_commits

    def _new_turn(self) -> None:
        self._turn_version = None

    def open_batch(self) -> object | None:
        """The batch of writes not committed yet (reads on this connection see them), or
        None; the same object until it commits."""
        return self._batch

    async def _lock_for_writing(self) -> bool:
        """Hold ``self._lock`` and SQLite's write lock: join the open batch (False), or open
        one with ``BEGIN IMMEDIATE`` (True). While another process writes, wait without blocking the
        loop: SQLite's own busy handler would sleep (1 ms and more) on the loop thread,
        stalling every request of this worker for a lock that is usually free again within
        microseconds."""
        deadline = time.monotonic() + self._busy_timeout_s
        attempts = 0
        while True:
            await self._lock.acquire()
            if self._batch is not None:
                return False
            try:
                if self._try_begin_immediate():
                    self._batch = []
                    asyncio.get_running_loop().call_soon(self._commit_batch)
                    return True
            except BaseException:
                self._release_lock()
                raise
            self._release_lock()
            if time.monotonic() >= deadline:
                raise exc.OperationalError("BEGIN IMMEDIATE", None, _LockedError(), False)
            attempts += 1
            await asyncio.sleep(_retry_delay(attempts))

    def _release_lock(self) -> None:
        self._lock.release()
        if self._commit_due:
            self._commit_due = False
            asyncio.get_running_loop().call_soon(self._commit_batch)

    def _end_block(self, ok: bool, opened: bool) -> None:
        """Keep the block's statements in the batch, or undo them. When SQLite has rolled
        the whole transaction back itself (it does on I/O errors and a full disk), the
        batch is lost: the block and everybody waiting for the batch get the error."""
        if not self._dbapi.in_transaction:
            lost = self._lose_batch()
            if ok:
                raise lost
            return
        if opened:
            if not ok:  # nobody else is in the batch yet
                assert self._connection is not None
                self._rollback(self._connection)
                self._batch = None
            return
        if not ok:
            self._dbapi.execute("ROLLBACK TO block").close()
        self._dbapi.execute("RELEASE block").close()

    def _lose_batch(self) -> exc.OperationalError:
        error = exc.OperationalError(
            "COMMIT",
            None,
            sqlite3.OperationalError("transaction lost: SQLite rolled it back"),
            False,
        )
        assert self._connection is not None
        self._rollback(self._connection)  # SQLAlchemy's bookkeeping
        self._finish_batch(error)
        return error

    async def _committed(self) -> None:
        """Wait until the open batch has committed; its error if it failed."""
        if self._batch is None:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._batch.append(waiter)
        await waiter

    def _commit_batch(self) -> None:
        """Scheduled when a batch opens, so it runs once the loop has run what was ready
        then: every block that started meanwhile is in it. A block that is still open (its
        code awaits something) commits it when it ends."""
        if self._batch is None:
            return
        if self._lock.locked():
            self._commit_due = True
            return
        if not self._dbapi.in_transaction:
            self._lose_batch()
            return
        try:
            self._end_transaction(commit=True)
        except Exception as error:  # handed to every waiter
            self._finish_batch(error)
            return
        self._finish_batch(None)

    def _finish_batch(self, error: Exception | None) -> None:
        waiters, self._batch = self._batch or [], None
        if error is not None:
            self.failed_commits += 1
        for waiter in waiters:
            if waiter.done():
                continue
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)

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
        await self._committed()
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
            self._wrapped = LoopSqliteConnection(
                self._connection, self._dbapi, self.statements, self._busy_timeout_s
            )
            if self.checkpointer is not None:
                self.checkpointer.start()
        return self._connection, self._wrapped
