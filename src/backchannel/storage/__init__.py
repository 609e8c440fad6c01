"""Implementations of the storage ports: in memory (reference) and SQL (SQLite, PostgreSQL)."""

from __future__ import annotations

from backchannel.protocol.ports import Storage
from backchannel.settings import DatabaseSettings
from backchannel.storage.memory import MemoryStorage

SQL_SCHEMES = ("sqlite+aiosqlite://", "postgresql+asyncpg://")


async def open_storage(db: DatabaseSettings) -> Storage:
    """SQL storage on the configured database. The schema must exist (see ``migrate``)."""
    if not db.url.startswith(SQL_SCHEMES):
        raise ValueError(
            "database.url must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
        )
    from backchannel.storage.sql import open_sql_storage

    return await open_sql_storage(db)


def memory_storage() -> MemoryStorage:
    return MemoryStorage()


__all__ = ["MemoryStorage", "memory_storage", "open_storage"]
