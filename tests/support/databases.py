"""Real databases for tests: a throwaway PostgreSQL database, a SQLite file in a tmp dir."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path
from typing import TypeVar

import asyncpg

from backchannel.settings import DatabaseSettings
from backchannel.storage import migrate

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_ADMIN_DSN = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/postgres"
PG_URL_BASE = f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/"
PG_UNAVAILABLE = f"PostgreSQL at {PG_HOST}:{PG_PORT} does not answer"

T = TypeVar("T")


@cache
def postgres_available() -> bool:
    """A quick TCP connect check (answered once per test session)."""
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1.0):
            return True
    except OSError:
        return False


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'backchannel.db'}"


async def migrated_sqlite(tmp_path: Path) -> DatabaseSettings:
    """Settings of a SQLite file in ``tmp_path`` with the whole schema."""
    db = DatabaseSettings(url=sqlite_url(tmp_path))
    await migrate.upgrade(db)
    return db


async def create_postgres_database() -> str:
    """Create a uniquely named database; returns its SQLAlchemy URL."""
    name = f"backchannel_test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return PG_URL_BASE + name


async def drop_postgres_database(url: str) -> None:
    """Terminate the database's connections, then drop it."""
    name = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await admin.close()


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """``async with postgres_database() as url:`` a fresh, empty database, dropped after."""
    url = await create_postgres_database()
    try:
        yield url
    finally:
        await drop_postgres_database(url)


def run_in_own_loop(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from synchronous code, even inside a running loop
    (a separate thread owns the loop, so the caller's loop is left alone)."""

    async def runner() -> T:
        return await make()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, runner()).result()
