"""Answers of hot reads kept in memory while the database says nobody else has written.

Every bc-authorize looks up its client, the user named by the hint, the user's pause and
devices; every token request its client again. Those rows change rarely, and on this
machine kind each SQLite read costs more in system calls (a read transaction's locks on
the WAL index) than in SQL. A store keeps the answers only where the database can tell
exactly and cheaply whether another connection (another worker, the CLI, an operator's
SQL) has committed since: SQLite's ``PRAGMA data_version``
(``LoopSqliteDatabase.data_version``), and, for clients, users, devices and pauses, whether
that commit wrote one of their tables (the ``kept_generation`` row that triggers bump,
``LoopSqliteDatabase.kept_version``). Such a commit empties the caches at their next use;
the store's own writes empty its cache at the end of their block (``forgetting``). Callers
get copies, so nothing they change reaches a kept answer, and a cache holds at
most ``limit`` entries.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Hashable
from contextlib import AbstractAsyncContextManager
from typing import Any, Final, Generic, TypeVar

import orjson

from backchannel.storage.sql.engine import Database, DatabaseConnection
from backchannel.storage.sql.loop_sqlite import LoopSqliteDatabase

V = TypeVar("V")
D = TypeVar("D")


class NotKept(enum.Enum):
    NOT_KEPT = enum.auto()


NOT_KEPT: Final = NotKept.NOT_KEPT


class KeptReads(Generic[V]):
    def __init__(
        self,
        data_version: Callable[[], int | None],
        duplicate: Callable[[V], V],
        limit: int = 1024,
    ) -> None:
        self._data_version = data_version
        self._duplicate = duplicate
        self._limit = limit
        self._version: int | None = None
        self._answers: dict[Hashable, V] = {}

    @property
    def keeps(self) -> bool:
        """False where the database cannot tell whether another connection committed: then
        nothing is ever kept."""
        return self._data_version is not _unknown_version

    def get(self, key: Hashable) -> V | NotKept:
        """A copy of the kept answer, or ``NOT_KEPT`` (never read, or the database changed
        since). Call it inside the read block that would otherwise read."""
        version = self._data_version()
        if version is None or version != self._version:
            self._answers.clear()
            self._version = version
            return NOT_KEPT
        if key not in self._answers:
            return NOT_KEPT
        return self._duplicate(self._answers[key])

    def keep(self, key: Hashable, answer: V) -> None:
        """After a read in the same block as ``get``: nothing else ran in between."""
        if self._version is None:
            return
        if len(self._answers) >= self._limit:
            self._answers.clear()
        self._answers[key] = self._duplicate(answer)

    def clear(self) -> None:
        self._answers.clear()

    def forget(self, key: Hashable) -> None:
        self._answers.pop(key, None)

    def forgetting(
        self, block: AbstractAsyncContextManager[DatabaseConnection]
    ) -> AbstractAsyncContextManager[DatabaseConnection]:
        """``block`` (a ``begin()``), forgetting every kept answer at its end, after its
        statements, whether it commits or fails."""
        return _Forgetting(block, self)


class _Forgetting:
    __slots__ = ("_block", "_kept")

    def __init__(
        self, block: AbstractAsyncContextManager[DatabaseConnection], kept: KeptReads[Any]
    ) -> None:
        self._block = block
        self._kept = kept

    async def __aenter__(self) -> DatabaseConnection:
        return await self._block.__aenter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> bool | None:
        self._kept.clear()
        return await self._block.__aexit__(exc_type, exc, tb)


def _unknown_version() -> None:
    return None


def kept_reads(
    engine: Database, duplicate: Callable[[V], V], limit: int = 1024, *, of_kept_tables: bool = True
) -> KeptReads[V]:
    """A cache for a store on ``engine``. Answers read from ``tables.KEPT_TABLES``
    (``of_kept_tables``) are dropped when another connection writes one of those tables
    (``LoopSqliteDatabase.kept_version``); other answers (auth requests) at any commit
    elsewhere (``data_version``). Where the engine cannot tell whether another connection
    committed (PostgreSQL), its version is always unknown, so the cache keeps nothing and
    every read goes to the database."""
    if isinstance(engine, LoopSqliteDatabase):
        version = engine.kept_version if of_kept_tables else engine.data_version
        return KeptReads(version, duplicate, limit)
    return KeptReads(_unknown_version, duplicate, limit)


def copier(cls: type[D], *json_fields: str) -> Callable[[D], D]:
    """Copies of dataclass ``cls`` instances that share nothing mutable with the original:
    the named fields hold JSON (dicts, lists) and are copied through orjson, every other
    field is immutable and shared."""
    names = tuple(field.name for field in dataclasses.fields(cls))  # type: ignore[arg-type]

    def duplicate(value: D) -> D:
        copied = cls(*[getattr(value, name) for name in names])
        for name in json_fields:
            if (field_value := getattr(value, name)) is not None:
                setattr(copied, name, orjson.loads(orjson.dumps(field_value)))
        return copied

    return duplicate
