"""SQLite on the event-loop thread (``storage.sql.loop_sqlite``): one connection per process,
write transactions that take the write lock up front, every commit durable before return."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import OperationalError

from backchannel.settings import DatabaseSettings
from backchannel.storage import open_storage
from backchannel.storage.sql import SqlStorage
from backchannel.storage.sql.loop_sqlite import LoopSqliteDatabase
from backchannel.storage.sql.tables import replay_keys
from tests.support.databases import migrated_sqlite

pytestmark = pytest.mark.anyio

WRITES_PER_WRITER = 150


async def _read_then_write(db: DatabaseSettings, writer: int) -> None:
    """Each transaction reads first, then writes: with deferred transactions two connections
    doing this at once fail with ``database is locked`` instead of waiting."""
    storage = await open_storage(db)
    assert isinstance(storage, SqlStorage)
    try:
        for n in range(WRITES_PER_WRITER):
            async with storage.engine.begin() as conn:
                await conn.scalar(select(func.count()).select_from(replay_keys))
                await conn.execute(insert(replay_keys), {"key": f"{writer}-{n}", "expires_at": 1.0})
            await asyncio.sleep(0)
    finally:
        await storage.close()


def _writer_thread(db: DatabaseSettings, writer: int, errors: list[BaseException]) -> None:
    try:
        asyncio.run(_read_then_write(db, writer))
    except BaseException as error:  # reported by the test below
        errors.append(error)


async def test_concurrent_writers_on_one_file_never_see_database_is_locked(
    tmp_path: Path,
) -> None:
    """Two connections (as two server processes have), each on its own thread and loop."""
    db = await migrated_sqlite(tmp_path)
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_writer_thread, args=(db, writer, errors)) for writer in (1, 2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    storage = await open_storage(db)
    try:
        assert await storage.replay.remember("1-0", 2.0, 0.0) is False  # committed, visible
        assert isinstance(storage, SqlStorage)
        async with storage.engine.connect() as conn:
            count = await conn.scalar(select(func.count()).select_from(replay_keys))
        assert count == 2 * WRITES_PER_WRITER
    finally:
        await storage.close()


async def test_failed_transaction_is_rolled_back_and_the_connection_stays_usable(
    tmp_path: Path,
) -> None:
    db = await migrated_sqlite(tmp_path)
    database = LoopSqliteDatabase(db)
    try:
        with pytest.raises(RuntimeError):
            async with database.begin() as conn:
                await conn.execute(insert(replay_keys), {"key": "gone", "expires_at": 1.0})
                raise RuntimeError("abort")
        async with database.begin() as conn:
            await conn.execute(insert(replay_keys), {"key": "kept", "expires_at": 1.0})
        async with database.connect() as conn:
            keys = (await conn.execute(select(replay_keys.c.key))).scalars().all()
        assert keys == ["kept"]
    finally:
        await database.dispose()


async def test_commit_is_visible_to_another_connection_when_the_block_ends(
    tmp_path: Path,
) -> None:
    db = await migrated_sqlite(tmp_path)
    writer, reader = LoopSqliteDatabase(db), LoopSqliteDatabase(db)
    try:
        async with writer.begin() as conn:
            await conn.execute(insert(replay_keys), {"key": "k", "expires_at": 1.0})
        async with reader.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(replay_keys)) == 1
    finally:
        await writer.dispose()
        await reader.dispose()


async def test_an_empty_write_block_releases_the_write_lock(tmp_path: Path) -> None:
    db = await migrated_sqlite(tmp_path)
    quick = db.model_copy(update={"sqlite_busy_timeout_ms": 50})
    first, second = LoopSqliteDatabase(quick), LoopSqliteDatabase(quick)
    try:
        async with first.begin():
            pass
        with pytest.raises(RuntimeError):
            async with first.begin():
                raise RuntimeError("abort before any statement")
        async with second.begin() as conn:
            await conn.execute(insert(replay_keys), {"key": "k", "expires_at": 1.0})
    finally:
        await first.dispose()
        await second.dispose()


async def test_pragmas_are_applied(tmp_path: Path) -> None:
    db = await migrated_sqlite(tmp_path)
    database = LoopSqliteDatabase(db)
    try:
        async with database.connect() as conn:
            values = [
                await conn.scalar(text(f"PRAGMA {name}"))
                for name in (
                    "journal_mode",
                    "synchronous",
                    "foreign_keys",
                    "busy_timeout",
                    "wal_autocheckpoint",
                    "cache_size",
                )
            ]
        # busy_timeout 0: SQLite must not sleep on the loop thread; the waiting is ours.
        # wal_autocheckpoint 0: nor sync the disk there; the checkpoint thread does.
        # cache_size: negative means KiB; database.sqlite_cache_mib is 32 by default.
        assert values == ["wal", 1, 1, 0, 0, -32 * 1024]
    finally:
        await database.dispose()


def _hold_lock(path: str, pragmas: tuple[str, ...], held: threading.Event, seconds: float) -> None:
    """Another process's connection: take SQLite's write lock and keep it for ``seconds``."""
    other = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in pragmas:
            other.execute(pragma)
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO replay_keys (key, expires_at) VALUES ('other', 1.0)")
        held.set()
        time.sleep(seconds)
        other.execute("COMMIT")
    finally:
        other.close()


async def _ticks_while(task: asyncio.Task[None]) -> int:
    """How often the loop ran something else while ``task`` waited."""
    ticks = 0
    while not task.done():
        await asyncio.sleep(0.01)
        ticks += 1
    await task
    return ticks


async def _wait_held(held: threading.Event) -> None:
    while not held.is_set():
        await asyncio.sleep(0.005)


async def _write_and_read_when_free(
    tmp_path: Path, pragmas: tuple[str, ...], seconds: float
) -> tuple[int, list[str]]:
    db = await migrated_sqlite(tmp_path)
    database = LoopSqliteDatabase(db)
    held = threading.Event()
    path = str(tmp_path / "backchannel.db")
    holder = threading.Thread(target=_hold_lock, args=(path, pragmas, held, seconds))
    holder.start()
    try:
        await _wait_held(held)

        async def write_then_read() -> None:
            async with database.begin() as conn:
                await conn.execute(insert(replay_keys), {"key": "ours", "expires_at": 1.0})

        ticks = await _ticks_while(asyncio.create_task(write_then_read()))
        async with database.connect() as conn:
            keys = (await conn.execute(select(replay_keys.c.key).order_by("key"))).scalars()
            return ticks, list(keys)
    finally:
        holder.join()
        await database.dispose()


async def test_a_writer_waits_for_another_process_lock_without_blocking_the_loop(
    tmp_path: Path,
) -> None:
    ticks, keys = await _write_and_read_when_free(tmp_path, ("PRAGMA journal_mode=WAL",), 0.3)
    assert keys == ["other", "ours"]
    assert ticks >= 10  # the loop kept running during the 0.3 s wait


async def test_a_writer_gives_up_after_the_busy_timeout(tmp_path: Path) -> None:
    db = await migrated_sqlite(tmp_path)
    quick = LoopSqliteDatabase(db.model_copy(update={"sqlite_busy_timeout_ms": 100}))
    held = threading.Event()
    holder = threading.Thread(
        target=_hold_lock,
        args=(str(tmp_path / "backchannel.db"), ("PRAGMA journal_mode=WAL",), held, 0.6),
    )
    holder.start()
    try:
        await _wait_held(held)
        started = time.monotonic()
        with pytest.raises(OperationalError, match="database is locked"):
            async with quick.begin() as conn:
                await conn.execute(insert(replay_keys), {"key": "ours", "expires_at": 1.0})
        assert time.monotonic() - started < 0.5
    finally:
        holder.join()
        await quick.dispose()


def test_nulls_and_booleans_are_bound_as_before_through_the_registered_adapters() -> None:
    """The adapters (there to skip the driver's AttributeError per such value) change
    nothing that is stored: NULL, 1 and 0, also in a table column."""
    with sqlite3.connect(":memory:") as connection:
        assert connection.execute("SELECT ?, ?, ?", (None, True, False)).fetchone() == (None, 1, 0)
        connection.execute("CREATE TABLE t (a, b)")
        connection.execute("INSERT INTO t VALUES (?, ?)", (None, True))
        row = connection.execute("SELECT a IS NULL, typeof(b), b FROM t").fetchone()
    assert row == (1, "integer", 1)
    assert sqlite3.adapters[(type(None), sqlite3.PrepareProtocol)](None) is None
    assert sqlite3.adapters[(bool, sqlite3.PrepareProtocol)](True) == 1
