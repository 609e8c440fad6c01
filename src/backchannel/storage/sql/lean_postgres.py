"""PostgreSQL at run time: statements compiled once by SQLAlchemy, run straight on asyncpg.

Through SQLAlchemy's ``AsyncEngine`` each statement crosses the greenlet bridge, builds an
execution context and a result object, and checks a connection out of SQLAlchemy's pool with
its events: several times what the asyncpg call itself costs. ``LeanPostgresDatabase`` keeps
only what the stores need:

- Statements are compiled by SQLAlchemy for the ``postgresql+asyncpg`` dialect, so the SQL
  (``$n`` placeholders with bind casts), the bind order and the bind and result type
  processors are SQLAlchemy's own. ``PgStatementCache`` keeps them: a statement object seen
  a second time gets a plain loop that builds its values; any other statement is cached by
  SQLAlchemy's cache key (what SQLAlchemy's compiled cache does) and its values come from
  ``construct_params``, expanding ``IN`` lists included. asyncpg's statement cache then
  prepares each SQL string once per connection on the server.
- ``ConnectionPool`` holds up to ``pool_size`` asyncpg connections; checkout and return are a
  list pop and push (asyncpg's own pool runs a reset query and a shielded task on every
  return). Each connection decodes json and jsonb with the engine's deserializer, as
  SQLAlchemy's dialect sets them up; binds arrive serialized by SQLAlchemy's JSON bind
  processor, so nothing is encoded twice.
- ``begin()`` is BEGIN ... COMMIT (ROLLBACK on error) on one connection; ``connect()`` runs
  its statements in autocommit, as ``read_engine`` asked of the engine before.
- asyncpg's errors are raised as SQLAlchemy's (constraint violations as ``IntegrityError``),
  so the stores catch what they caught before.

Migrations keep SQLAlchemy's ``AsyncEngine`` (``engine.create_engine``).
"""

from __future__ import annotations

import asyncio
import re
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import asyncpg
from sqlalchemy import exc
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.sql import Insert
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from backchannel.settings import DatabaseSettings
from backchannel.storage.sql.engine import JSON_OPTIONS, DatabaseConnection, Result
from backchannel.storage.sql.prepared import (
    FastRows,
    Processor,
    column_keys,
    positional_binds,
    positional_values,
    processed,
    result_columns,
    row_class,
)

if TYPE_CHECKING:
    from sqlalchemy.engine.interfaces import _CoreAnyExecuteParams, _CoreSingleExecuteParams

Connection = Any  # asyncpg.Connection; asyncpg ships no type information
POOL_TIMEOUT_S = 30.0  # as SQLAlchemy's pool_timeout: how long a checkout waits for a connection

_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)
# Most specific first. SQLAlchemy's asyncpg dialect maps the same families; the server errors
# it leaves as a bare ``DBAPIError`` are its subclasses here (``OperationalError`` for lost
# connections, lock and serialization failures, ``DatabaseError`` for the rest).
_ERROR_TYPES: tuple[tuple[Any, type[exc.DBAPIError]], ...] = (
    (asyncpg.IntegrityConstraintViolationError, exc.IntegrityError),
    (asyncpg.SyntaxOrAccessError, exc.ProgrammingError),
    (asyncpg.DataError, exc.DataError),
    (asyncpg.FeatureNotSupportedError, exc.NotSupportedError),
    (asyncpg.InternalServerError, exc.InternalError),
    (asyncpg.PostgresConnectionError, exc.OperationalError),
    (asyncpg.InsufficientResourcesError, exc.OperationalError),
    (asyncpg.OperatorInterventionError, exc.OperationalError),
    (asyncpg.TransactionRollbackError, exc.OperationalError),
    (asyncpg.ObjectNotInPrerequisiteStateError, exc.OperationalError),
    (asyncpg.PostgresError, exc.DatabaseError),
    (asyncpg.InterfaceError, exc.InterfaceError),
    (asyncpg.InternalClientError, exc.InternalError),
)
_ROWCOUNT = re.compile(r"(?:SELECT|UPDATE|DELETE|INSERT \d+) (\d+)")  # SQLAlchemy's parse


def database_error(
    error: BaseException, sql: str | None, values: Any, connection: Connection | None = None
) -> exc.DBAPIError:
    """The SQLAlchemy exception for an asyncpg one."""
    error_type = next(
        (ours for theirs, ours in _ERROR_TYPES if isinstance(error, theirs)), exc.DBAPIError
    )
    invalidated = connection is not None and connection.is_closed()
    return error_type(sql, values, error, connection_invalidated=invalidated)


def _rowcount(status: str | None) -> int:
    match = _ROWCOUNT.match(status or "")
    return int(match.group(1)) if match else -1


# -- connections ------------------------------------------------------------------------------


def connect_arguments(url: URL, dialect: Dialect) -> dict[str, Any]:
    """What SQLAlchemy's dialect passes to ``asyncpg.connect`` for ``url`` (host, port,
    user, password, database, query options)."""
    _, arguments = dialect.create_connect_args(url)
    options = dict(arguments)
    cache_size = options.pop("prepared_statement_cache_size", None)
    if cache_size is not None:  # SQLAlchemy's name for the per-connection statement cache
        options["statement_cache_size"] = cache_size
    options.pop("prepared_statement_name_func", None)
    options.pop("async_creator_fn", None)
    return options


def _jsonb_encode(text: str) -> bytes:
    return b"\x01" + text.encode()  # jsonb's binary format: a version byte, then the text


async def register_json_codecs(connection: Connection) -> None:
    """json and jsonb as SQLAlchemy's asyncpg dialect sets them up: values to write arrive
    serialized (by SQLAlchemy's JSON bind processor); values read are decoded here."""
    loads = JSON_OPTIONS["json_deserializer"]
    await connection.set_type_codec(
        "json", encoder=str.encode, decoder=loads, schema="pg_catalog", format="binary"
    )
    await connection.set_type_codec(
        "jsonb",
        encoder=_jsonb_encode,
        decoder=lambda data: loads(data[1:]),
        schema="pg_catalog",
        format="binary",
    )


async def open_connection(arguments: Mapping[str, Any]) -> Connection:
    """A new asyncpg connection, ready for the stores. Unreachable servers raise ``OSError``
    (as through SQLAlchemy), errors the server reports a SQLAlchemy exception."""
    try:
        connection = await asyncpg.connect(**arguments)
    except _DRIVER_ERRORS as error:
        raise database_error(error, None, None) from error
    try:
        await register_json_codecs(connection)
    except BaseException as error:
        connection.terminate()
        if isinstance(error, _DRIVER_ERRORS):
            raise database_error(error, None, None, connection) from error
        raise
    return connection


class ConnectionPool:
    """Up to ``size`` connections, opened on demand and reused last in, first out. A checkout
    waits (``POOL_TIMEOUT_S`` at most) while all are in use; returned connections go to the
    longest waiter first. A connection that is closed or still inside a transaction when
    returned (a failed rollback, a cancelled task) is dropped."""

    def __init__(
        self,
        opener: Callable[[], Awaitable[Connection]],
        size: int,
        timeout: float = POOL_TIMEOUT_S,
    ) -> None:
        self._opener = opener
        self._size = size
        self._timeout = timeout
        self._idle: list[Connection] = []
        self._opened = 0  # connections idle, in use or being opened
        self._waiters: deque[asyncio.Future[Connection | None]] = deque()
        self._in_use: set[Connection] = set()
        self._retired: set[Connection] = set()  # in use when the pool was closed

    async def acquire(self) -> Connection:
        connection = self._take_idle()
        if connection is None:
            if self._opened < self._size:
                self._opened += 1
                connection = await self._open_reserved()
            else:
                connection = await self._wait()
        self._in_use.add(connection)
        return connection

    def release(self, connection: Connection) -> None:
        self._in_use.discard(connection)
        if connection in self._retired or connection.is_closed() or connection.is_in_transaction():
            self._retired.discard(connection)
            connection.terminate()
            self._free_slot()
            return
        waiter = self._next_waiter()
        if waiter is None:
            self._idle.append(connection)
        else:
            waiter.set_result(connection)

    async def close(self) -> None:
        """Close the idle connections now and the ones in use when they come back. The pool
        stays usable: later checkouts open new connections."""
        idle, self._idle = self._idle, []
        self._opened -= len(idle)
        self._retired.update(self._in_use)
        await asyncio.gather(*(_close(connection) for connection in idle))

    def _take_idle(self) -> Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if not connection.is_closed():
                return connection
            self._opened -= 1  # the server closed it while it was idle
        return None

    async def _open_reserved(self) -> Connection:
        """Open a connection in a slot already counted in ``_opened``."""
        try:
            return await self._opener()
        except BaseException:
            self._free_slot()
            raise

    async def _wait(self) -> Connection:
        waiter: asyncio.Future[Connection | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self._timeout):
                handed = await waiter
        except BaseException as error:
            self._abandon(waiter)
            if isinstance(error, TimeoutError):
                raise exc.TimeoutError(
                    f"all {self._size} PostgreSQL connections stayed in use for {self._timeout} s"
                ) from None
            raise
        if handed is None:  # a slot freed up and is reserved for this checkout
            return await self._open_reserved()
        return handed

    def _abandon(self, waiter: asyncio.Future[Connection | None]) -> None:
        """A checkout gave up waiting: pass on what it was handed meanwhile, if anything."""
        if waiter.done() and not waiter.cancelled():
            handed = waiter.result()
            if handed is None:
                self._free_slot()
            else:
                self._in_use.add(handed)
                self.release(handed)
            return
        waiter.cancel()
        if waiter in self._waiters:
            self._waiters.remove(waiter)

    def _free_slot(self) -> None:
        waiter = self._next_waiter()
        if waiter is None:
            self._opened -= 1
        else:
            waiter.set_result(None)  # the slot stays counted, now the waiter's

    def _next_waiter(self) -> asyncio.Future[Connection | None] | None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                return waiter
        return None


async def _close(connection: Connection) -> None:
    try:
        await connection.close(timeout=5)
    except Exception:  # closing anyway
        connection.terminate()


# -- statements -------------------------------------------------------------------------------


def _is_plain_insert(statement: Executable) -> bool:
    """An INSERT without RETURNING. Compiled as for executemany, so that SQLAlchemy does not
    add ``RETURNING id`` for a server-generated key the stores never read."""
    return isinstance(statement, Insert) and not len(statement.exported_columns)


class PgStatement:
    """One statement compiled for asyncpg: its SQL, how its positional values are built from
    the parameters, how its rows are read. The result type processors depend on the column
    types the server reports, so the first run of a statement that returns rows asks the
    server for them (one prepare)."""

    __slots__ = (
        "_binds",
        "_columns",
        "_compiled",
        "_dialect",
        "_keys",
        "_result",
        "_row",
        "expanding",
        "fast",
        "returns_rows",
        "sql",
    )

    def __init__(self, compiled: SQLCompiler, statement: Executable, dialect: Dialect) -> None:
        if compiled.insert_prefetch or compiled.update_prefetch:
            raise exc.CompileError("Python-side column defaults are not supported on PostgreSQL")
        self.sql = compiled.string
        self._compiled = compiled
        self._dialect = dialect
        defaults = compiled.construct_params(_check=False, escape_names=False)
        self._binds = positional_binds(compiled, dialect, defaults)
        self.expanding = bool(compiled.post_compile_params or compiled.literal_execute_params)
        # Values computed per execution (bind callables) are not baked into the fast loop.
        self.fast = not self.expanding and all(
            bind.callable is None for bind in compiled.binds.values()
        )
        self._columns = result_columns(statement)
        self.returns_rows: bool | None = None if self._columns is None else bool(self._columns)
        self._keys = column_keys(self._columns or ())
        self._result: tuple[tuple[int, Processor], ...] | None = (
            () if self.returns_rows is False else None
        )
        self._row = row_class(self._keys)

    def values(self, parameters: Mapping[str, Any]) -> list[Any]:
        """The positional values (``fast`` statements only)."""
        return positional_values(self._binds, parameters)

    def bind(
        self, parameters: Mapping[str, Any], extracted: Sequence[Any] | None
    ) -> tuple[str, list[Any]]:
        """The SQL and its positional values, the way SQLAlchemy's execution context builds
        them: ``extracted`` are the literal values of the statement being run (its cache
        key's), expanding parameters are expanded into the SQL."""
        compiled = self._compiled
        params = compiled.construct_params(
            parameters, extracted_parameters=extracted, escape_names=False
        )
        if not self.expanding:
            return self.sql, [
                params[name] if processor is None else processor(params[name])
                for name, _, processor in self._binds
            ]
        expanded = compiled._process_parameters_for_postcompile(params)
        processors = {name: processor for name, _, processor in self._binds if processor}
        processors.update(expanded.processors)
        values = []
        for name in expanded.positiontup or ():
            value = expanded.parameters[name]
            processor = processors.get(name)
            values.append(value if processor is None else processor(value))
        return expanded.statement, values

    async def run(self, connection: Connection, sql: str, values: Sequence[Any]) -> FastRows:
        try:
            if self.returns_rows is False:
                status = await connection.execute(sql, *values)
                return FastRows(self._keys, [], _rowcount(status))
            if self._result is None:
                return await self._describe_and_run(connection, sql, values)
            records = await connection.fetch(sql, *values)
        except _DRIVER_ERRORS as error:
            raise database_error(error, sql, values, connection) from error
        return self._rows(records)

    async def run_many(
        self, connection: Connection, sql: str, rows: Sequence[Sequence[Any]]
    ) -> FastRows:
        """executemany. Its row count is -1, as through SQLAlchemy's asyncpg dialect; a
        statement that returns rows is run once per row of parameters."""
        if self.returns_rows is not False:
            results = [await self.run(connection, sql, values) for values in rows]
            fetched = [row for result in results for row in result.all()]
            return FastRows(self._keys, fetched, len(fetched))
        try:
            await connection.executemany(sql, rows)
        except _DRIVER_ERRORS as error:
            raise database_error(error, sql, rows, connection) from error
        return FastRows(self._keys, [], -1)

    async def _describe_and_run(
        self, connection: Connection, sql: str, values: Sequence[Any]
    ) -> FastRows:
        prepared = await connection.prepare(sql)
        self._learn(prepared.get_attributes())
        records = await prepared.fetch(*values)
        if not self.returns_rows:
            return FastRows(self._keys, [], _rowcount(prepared.get_statusmsg()))
        return self._rows(records)

    def _learn(self, attributes: Sequence[Any]) -> None:
        """Result processors for the column types the server reports, as SQLAlchemy picks
        them from the cursor description."""
        dialect = self._dialect
        if self._columns is None:  # text(): the server names the columns, none is typed
            self._keys = tuple(attribute.name for attribute in attributes)
            self._row = row_class(self._keys)
        self._result = tuple(
            (index, processor)
            for index, (column, attribute) in enumerate(
                zip(self._columns or (), attributes, strict=False)
            )
            if (
                processor := column.type.dialect_impl(dialect).result_processor(
                    dialect, attribute.type.oid
                )
            )
        )
        self.returns_rows = bool(attributes)

    def _rows(self, records: list[Any]) -> FastRows:
        make = self._row._make
        processors = self._result
        if processors:
            rows = [make(processed(record, processors)) for record in records]
        else:
            rows = [make(record) for record in records]
        return FastRows(self._keys, rows, len(rows))


class PgStatementCache:
    """Compiled statements. A statement object seen a second time with the same parameter
    names is kept by identity (a strong reference keeps its id from being reused); unless it
    expands parameters or has bind callables, its values come from a plain loop. Every other
    statement is looked up by SQLAlchemy's cache key. Both caches are bounded."""

    def __init__(self, dialect: Dialect, limit: int = 512) -> None:
        self._dialect = dialect
        self._limit = limit
        self._by_identity: dict[
            tuple[int, tuple[str, ...], bool], tuple[Executable, PgStatement]
        ] = {}
        self._seen: weakref.WeakValueDictionary[int, Executable] = weakref.WeakValueDictionary()
        self._by_cache_key: dict[tuple[Any, tuple[str, ...], bool], PgStatement] = {}

    def bind(
        self, statement: Executable, parameters: Mapping[str, Any]
    ) -> tuple[PgStatement, str, list[Any]]:
        keys = tuple(parameters)
        known = self._by_object(statement, keys, many=False)
        if known is not None:
            if known.fast:
                return known, known.sql, known.values(parameters)
            return known, *known.bind(parameters, None)
        compiled, extracted = self._by_key(statement, keys, many=False)
        return compiled, *compiled.bind(parameters, extracted)

    def bind_many(
        self, statement: Executable, rows: Sequence[Mapping[str, Any]]
    ) -> tuple[PgStatement, str, list[list[Any]]]:
        keys = tuple(rows[0])
        known = self._by_object(statement, keys, many=True)
        if known is not None and known.fast:
            return known, known.sql, [known.values(row) for row in rows]
        compiled, extracted = (
            (known, None) if known is not None else self._by_key(statement, keys, many=True)
        )
        if compiled.expanding:
            raise exc.InvalidRequestError(
                "'literal_execute' or 'expanding' parameters can't be used with executemany()"
            )
        return compiled, compiled.sql, [compiled.bind(row, extracted)[1] for row in rows]

    def _by_object(
        self, statement: Executable, keys: tuple[str, ...], many: bool
    ) -> PgStatement | None:
        entry = self._by_identity.get((id(statement), keys, many))
        if entry is not None:
            return entry[1]
        if self._seen.get(id(statement)) is not statement:
            self._seen[id(statement)] = statement
            return None
        if len(self._by_identity) >= self._limit:
            return None
        compiled = self._compile(statement, keys, many, cache_key=None)
        self._by_identity[(id(statement), keys, many)] = (statement, compiled)
        return compiled

    def _by_key(
        self, statement: Executable, keys: tuple[str, ...], many: bool
    ) -> tuple[PgStatement, Sequence[Any] | None]:
        if not isinstance(statement, ClauseElement):
            raise exc.ArgumentError(f"not a SQL statement: {statement!r}")
        cache_key = statement._generate_cache_key()
        if cache_key is None:  # not cacheable: compiled for this execution only
            return self._compile(statement, keys, many, cache_key=None), None
        entry = (cache_key.key, keys, many)
        compiled = self._by_cache_key.get(entry)
        if compiled is None:
            compiled = self._compile(statement, keys, many, cache_key=cache_key)
            if len(self._by_cache_key) >= self._limit:
                del self._by_cache_key[next(iter(self._by_cache_key))]
            self._by_cache_key[entry] = compiled
        return compiled, cache_key.bindparams

    def _compile(
        self, statement: Executable, keys: tuple[str, ...], many: bool, cache_key: Any
    ) -> PgStatement:
        if not isinstance(statement, ClauseElement):
            raise exc.ArgumentError(f"not a SQL statement: {statement!r}")
        compiled = statement.compile(
            dialect=self._dialect,
            column_keys=sorted(keys),
            for_executemany=many or _is_plain_insert(statement),
            cache_key=cache_key,
        )
        if not isinstance(compiled, SQLCompiler):
            raise exc.ArgumentError(f"not a SQL statement: {statement!r}")
        return PgStatement(compiled, statement, self._dialect)


# -- the database -----------------------------------------------------------------------------


class _Block:
    """A checked-out connection as the stores use it (``DatabaseConnection``)."""

    __slots__ = ("_connection", "_database")

    def __init__(self, database: LeanPostgresDatabase) -> None:
        self._database = database
        self._connection: Connection = None

    async def execute(
        self, statement: Executable, parameters: _CoreAnyExecuteParams | None = None
    ) -> Result:
        statements = self._database.statements
        if not parameters:
            parameters = {}
        if isinstance(parameters, Mapping):
            compiled, sql, values = statements.bind(statement, parameters)
            return await compiled.run(self._connection, sql, values)
        compiled, sql, rows = statements.bind_many(statement, parameters)
        return await compiled.run_many(self._connection, sql, rows)

    async def scalar(
        self, statement: Executable, parameters: _CoreSingleExecuteParams | None = None
    ) -> Any:
        return (await self.execute(statement, parameters)).scalar()


async def _simple(connection: Connection, sql: str) -> None:
    try:
        await connection.execute(sql)
    except _DRIVER_ERRORS as error:
        raise database_error(error, sql, None, connection) from error


async def _rollback(connection: Connection) -> None:
    """Roll back; when even that fails the connection is of no further use (the pool drops
    it) and the error that caused the rollback is the one to report."""
    try:
        await connection.execute("ROLLBACK")
    except Exception:
        connection.terminate()


class _WriteBlock(_Block):
    """``async with database.begin()``: one transaction, committed at the end of the block,
    rolled back if it raises."""

    __slots__ = ()

    async def __aenter__(self) -> DatabaseConnection:
        pool = self._database.pool
        connection = await pool.acquire()
        try:
            await _simple(connection, "BEGIN")
        except BaseException:
            pool.release(connection)
            raise
        self._connection = connection
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        connection = self._connection
        try:
            if exc_type is None:
                await _simple(connection, "COMMIT")
            else:
                await _rollback(connection)
        finally:
            self._database.pool.release(connection)


class _ReadBlock(_Block):
    """``async with database.connect()``: statements in autocommit on one connection."""

    __slots__ = ()

    async def __aenter__(self) -> DatabaseConnection:
        self._connection = await self._database.pool.acquire()
        return self

    async def __aexit__(self, *_: object) -> None:
        self._database.pool.release(self._connection)


class LeanPostgresDatabase:
    """A ``Database`` over a pool of ``db.pool_size`` asyncpg connections, opened on demand."""

    def __init__(self, db: DatabaseSettings) -> None:
        url = make_url(db.url)
        dialect_class: Any = url.get_dialect()  # postgresql+asyncpg, configured as the engine's
        self._dialect: Dialect = dialect_class(dbapi=dialect_class.import_dbapi(), **JSON_OPTIONS)
        self.statements = PgStatementCache(self._dialect)
        arguments = connect_arguments(url, self._dialect)
        self.pool = ConnectionPool(lambda: open_connection(arguments), db.pool_size)

    @property
    def dialect(self) -> Dialect:
        return self._dialect

    def begin(self) -> AbstractAsyncContextManager[DatabaseConnection]:
        return _WriteBlock(self)

    def connect(self) -> AbstractAsyncContextManager[DatabaseConnection]:
        return _ReadBlock(self)

    async def dispose(self) -> None:
        await self.pool.close()
