"""Statements the stores run again and again, compiled once and run straight on ``sqlite3``.

SQLAlchemy Core spends about 30 µs of Python around each 5 µs SQLite call: the compile-cache
key, an execution context, parameter and result processing through its generic machinery,
result metadata. The stores' statements are module constants executed thousands of times, so
``LoopSqliteConnection`` compiles such a statement once (with SQLAlchemy, for the SQLite
dialect), keeps the SQL text, the order of its parameters and the type processors of its
binds and result columns, and from then on runs it with one ``sqlite3`` call.

Which statements: the second time the *same statement object* is executed with the same
parameter names (``insert_into`` gives one INSERT object per table for that). A statement
built per call (a new object each time) is never seen twice and keeps going through
SQLAlchemy, as does anything this module does not handle (expanding ``IN`` lists,
RETURNING with several rows of parameters, Python-side column defaults, escaped bind names,
``text()``).
Results offer the part of SQLAlchemy's ``Result`` API the stores use; ``lean_postgres`` returns
the same types and shares the helpers below.
"""

from __future__ import annotations

import functools
import sqlite3
import weakref
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Table, exc, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import Delete, Insert, Select, Update
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.selectable import SelectBase

Processor = Callable[[Any], Any]
_SUPPORTED = (Select, Insert, Update, Delete)
MISSING = object()


class FastRows:
    """The rows (fetched at once) or the row count of one statement."""

    __slots__ = ("_keys", "_rows", "rowcount")

    def __init__(self, keys: Sequence[str], rows: list[Any], rowcount: int) -> None:
        self._keys = keys
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def all(self) -> list[Any]:
        return self._rows

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalar_one(self) -> Any:
        if not self._rows:
            raise exc.NoResultFound("No row was found when one was required")
        if len(self._rows) > 1:
            raise exc.MultipleResultsFound("Multiple rows were found when exactly one was required")
        return self._rows[0][0]

    def scalars(self) -> list[Any]:
        return [row[0] for row in self._rows]

    def mappings(self) -> FastMappings:
        return FastMappings([dict(zip(self._keys, row, strict=True)) for row in self._rows])


class FastMappings:
    __slots__ = ("_rows",)

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self._rows = rows

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._rows)

    def first(self) -> dict[str, Any] | None:
        return self._rows[0] if self._rows else None

    def all(self) -> list[dict[str, Any]]:
        return self._rows


class PreparedStatement:
    """One statement compiled for SQLite, with its bind order and type processors."""

    __slots__ = ("_binds", "_keys", "_result", "_row", "sql")

    def __init__(self, compiled: SQLCompiler, statement: Executable, dialect: Dialect) -> None:
        self.sql = compiled.string
        self._binds = positional_binds(compiled, dialect, compiled.construct_params(_check=False))
        columns = result_columns(statement) or ()
        self._keys = column_keys(columns)
        self._result = tuple(
            (index, processor)
            for index, column in enumerate(columns)
            if (processor := column.type.dialect_impl(dialect).result_processor(dialect, None))
        )
        self._row = row_class(self._keys)

    @property
    def returns_rows(self) -> bool:
        return bool(self._keys)

    def run(self, driver: sqlite3.Connection, parameters: Mapping[str, Any]) -> FastRows:
        values = positional_values(self._binds, parameters)
        try:
            cursor = driver.execute(self.sql, values)
            raw = cursor.fetchall()
        except sqlite3.Error as error:
            raise exc.DBAPIError.instance(self.sql, values, error, sqlite3.Error) from error
        if cursor.description is None:
            return FastRows(self._keys, [], cursor.rowcount)
        return FastRows(self._keys, [self._process(row) for row in raw], cursor.rowcount)

    def run_many(self, driver: sqlite3.Connection, rows: Sequence[Mapping[str, Any]]) -> FastRows:
        """executemany: for statements that return no rows (inserts of several rows)."""
        values = [positional_values(self._binds, parameters) for parameters in rows]
        try:
            cursor = driver.executemany(self.sql, values)
        except sqlite3.Error as error:
            raise exc.DBAPIError.instance(self.sql, values, error, sqlite3.Error) from error
        return FastRows(self._keys, [], cursor.rowcount)

    def _process(self, row: tuple[Any, ...]) -> Any:
        return self._row._make(processed(row, self._result) if self._result else row)


def row_class(keys: tuple[str, ...]) -> Any:
    """A tuple with attribute access and ``_mapping``, like SQLAlchemy's ``Row``."""
    fields = namedtuple("Fields", keys, rename=True)  # type: ignore[misc]

    class Row(fields):
        __slots__ = ()

        @property
        def _mapping(self) -> dict[str, Any]:
            return dict(zip(keys, self, strict=True))

    return Row


def prepare(
    statement: Executable, dialect: Dialect, keys: Sequence[str]
) -> PreparedStatement | None:
    """``statement`` compiled for parameters named ``keys``; None when it needs SQLAlchemy."""
    if not isinstance(statement, _SUPPORTED):
        return None
    compiled = statement.compile(dialect=dialect, column_keys=sorted(keys))
    if not isinstance(compiled, SQLCompiler) or _needs_sqlalchemy(compiled):
        return None
    if compiled.positiontup is None and compiled.binds:
        return None
    return PreparedStatement(compiled, statement, dialect)


def _needs_sqlalchemy(compiled: SQLCompiler) -> bool:
    return bool(
        compiled.post_compile_params
        or compiled.literal_execute_params
        or compiled.escaped_bind_names
        or compiled.insert_prefetch
        or compiled.update_prefetch
    )


Bind = tuple[str, Any, Processor | None]


def positional_binds(
    compiled: SQLCompiler, dialect: Dialect, defaults: Mapping[str, Any]
) -> tuple[Bind, ...]:
    """Per position of the compiled SQL: the bind's name, its value when the parameters do
    not name it (``MISSING`` when it is required) and its type's bind processor."""
    return tuple(
        (name, _bind_default(compiled, name, defaults), _bind_processor(compiled, name, dialect))
        for name in compiled.positiontup or ()
    )


def positional_values(binds: Sequence[Bind], parameters: Mapping[str, Any]) -> list[Any]:
    values = []
    for name, default, processor in binds:
        value = parameters.get(name, default)
        if value is MISSING:
            raise exc.InvalidRequestError(f"A value is required for bind parameter {name!r}")
        values.append(value if processor is None else processor(value))
    return values


def _bind_default(compiled: SQLCompiler, name: str, defaults: Mapping[str, Any]) -> Any:
    bind = compiled.binds[name]
    if bind.required and bind.callable is None and bind.value is None:
        return MISSING
    return defaults.get(name)


def _bind_processor(compiled: SQLCompiler, name: str, dialect: Dialect) -> Processor | None:
    bind_type = compiled.binds[name].type
    return bind_type.dialect_impl(dialect).bind_processor(dialect)


def result_columns(statement: Executable) -> Sequence[Any] | None:
    """The columns a statement returns; None when only the server knows (``text()``)."""
    if isinstance(statement, SelectBase):
        return list(statement.selected_columns)
    if isinstance(statement, UpdateBase):
        return list(statement.exported_columns)
    return None


def column_keys(columns: Sequence[Any]) -> tuple[str, ...]:
    """The mapping keys of result columns; positional names for unlabelled expressions."""
    return tuple(column.key or f"column_{index}" for index, column in enumerate(columns))


def processed(row: Sequence[Any], processors: Sequence[tuple[int, Processor]]) -> list[Any]:
    """``row`` with each (index, processor) applied."""
    values = list(row)
    for index, processor in processors:
        values[index] = processor(values[index])
    return values


@functools.cache
def insert_into(table: Table) -> Insert:
    """The one ``INSERT INTO table`` statement object (values from the parameters), so that
    repeated inserts are prepared."""
    return insert(table)


class StatementCache:
    """Prepared statements by statement object and parameter names; bounded."""

    def __init__(self, dialect: Dialect, limit: int = 512) -> None:
        self._dialect = dialect
        self._limit = limit
        # Tests set this so that every statement takes the prepared path.
        self.prepare_at_first_sight = False
        # A strong reference to each statement keeps its id() from being reused.
        self._prepared: dict[tuple[int, tuple[str, ...], bool], tuple[Executable, Any]] = {}
        self._seen: weakref.WeakValueDictionary[int, Executable] = weakref.WeakValueDictionary()

    def lookup(
        self, statement: Executable, keys: tuple[str, ...], *, many: bool = False
    ) -> PreparedStatement | None:
        """The prepared form of ``statement`` for parameters named ``keys`` (``many``: for
        executemany, so never one that returns rows); None: let SQLAlchemy run it."""
        entry = self._prepared.get((id(statement), keys, many))
        if entry is not None:
            prepared: PreparedStatement | None = entry[1]
            return prepared
        if not self.prepare_at_first_sight and self._seen.get(id(statement)) is not statement:
            self._seen[id(statement)] = statement
            return None
        if len(self._prepared) >= self._limit:
            return None
        prepared = prepare(statement, self._dialect, keys)
        if many and prepared is not None and prepared.returns_rows:
            prepared = None
        self._prepared[(id(statement), keys, many)] = (statement, prepared)
        return prepared
