"""Engines for the two supported drivers, configured the way Backchannel needs them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from backchannel.settings import DatabaseSettings


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode("utf-8")


def create_engine(db: DatabaseSettings) -> AsyncEngine:
    """An async engine: SQLite (file created on demand, WAL) or PostgreSQL (pooled)."""
    if db.is_sqlite:
        return _sqlite_engine(db)
    return create_async_engine(
        db.url,
        pool_size=db.pool_size,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
    )


def _sqlite_engine(db: DatabaseSettings) -> AsyncEngine:
    _create_parent_directory(db.url)
    engine = create_async_engine(
        db.url, json_serializer=_json_dumps, json_deserializer=orjson.loads
    )
    pragmas = (
        "PRAGMA journal_mode=WAL",
        f"PRAGMA busy_timeout={int(db.sqlite_busy_timeout_ms)}",
        "PRAGMA synchronous=NORMAL",
        "PRAGMA foreign_keys=ON",
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for pragma in pragmas:
            cursor.execute(pragma)
        cursor.close()

    return engine


def _create_parent_directory(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def read_engine(engine: AsyncEngine) -> AsyncEngine:
    """The engine for single-statement reads. On PostgreSQL it runs them in autocommit, which
    saves the BEGIN and ROLLBACK round trips; SQLite's driver never opens a transaction for
    a SELECT anyway. Shares the pool with ``engine``."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine
