"""Answers of hot reads kept in memory while the database says nobody else has written.

Every bc-authorize looks up its client, the user named by the hint, the user's pause and
devices; every token request its client again. Those rows change rarely, and on this
machine kind each SQLite read costs more in system calls (a read transaction's locks on
the WAL index) than in SQL. A store keeps the answers only where the database can tell
exactly and cheaply whether another connection (another worker, the CLI, an operator's
SQL) has committed since: SQLite's ``PRAGMA data_version``
(``LoopSqliteDatabase.data_version``). Any such commit empties every cache at its next
use; the store's own writes empty its cache at once. Callers get copies, so nothing they
change reaches a kept answer, and a cache holds at most ``limit`` entries.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Hashable
from typing import Any, Final, Generic, TypeVar

import orjson

from backchannel.storage.sql.engine import Database

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


def _unknown_version() -> None:
    return None


def kept_reads(engine: Database, duplicate: Callable[[V], V], limit: int = 1024) -> KeptReads[V]:
    """A cache for a store on ``engine``. Where the engine cannot tell whether another
    connection committed (PostgreSQL), its version is always unknown, so the cache keeps
    nothing and every read goes to the database."""
    data_version: Any = getattr(engine, "data_version", None)
    return KeptReads(data_version if callable(data_version) else _unknown_version, duplicate, limit)


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
