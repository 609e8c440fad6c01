"""WAL checkpoints beside the event loop (``storage.sql.wal_checkpointer``): the loop
connection never checkpoints, a thread copies the WAL into the database file and rewinds it
once it has grown past its limit."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from backchannel.settings import DatabaseSettings
from backchannel.storage import migrate
from backchannel.storage.sql.loop_sqlite import LoopSqliteDatabase
from backchannel.storage.sql.tables import replay_keys
from backchannel.storage.sql.wal_checkpointer import WalCheckpointer
from tests.support.databases import sqlite_url

pytestmark = pytest.mark.anyio
RESTART_PAGES = 20


def _wal_file(path: Path) -> sqlite3.Connection:
    """A writer that, like the loop connection, never checkpoints on its own."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA wal_autocheckpoint=0")
    connection.execute("CREATE TABLE IF NOT EXISTS t (n INTEGER PRIMARY KEY, body TEXT)")
    return connection


def _write(connection: sqlite3.Connection, rows: int, start: int = 0) -> None:
    for n in range(start, start + rows):
        connection.execute("INSERT INTO t VALUES (?, ?)", (n, "x" * 2000))


def _frames_in_wal(path: Path) -> int:
    """Frames a reader sees in the WAL, from a connection that checkpoints nothing."""
    probe = sqlite3.connect(path, isolation_level=None)
    try:
        probe.execute("PRAGMA wal_autocheckpoint=0")
        return int(probe.execute("PRAGMA wal_checkpoint(NOOP)").fetchone()[1])
    finally:
        probe.close()


def _one_pass(path: Path, restart_pages: int = 1_000_000) -> WalCheckpointer:
    """A checkpointer after one pass over ``path``, run here on a connection of its own."""
    checkpointer = WalCheckpointer(str(path), restart_pages=restart_pages)
    with sqlite3.connect(path, isolation_level=None) as own:
        checkpointer.checkpoint_once(own)
    return checkpointer


def test_a_pass_copies_every_committed_frame_into_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    writer = _wal_file(path)
    _write(writer, 50)
    checkpointer = _one_pass(path)
    assert checkpointer.stats.passes == 1
    assert checkpointer.stats.wal_frames > 50
    assert checkpointer.stats.copied_frames == checkpointer.stats.wal_frames
    assert checkpointer.stats.restarts == 0
    # The rows are in the database file itself now: a copy without the WAL has them.
    (tmp_path / "copy.sqlite").write_bytes(path.read_bytes())
    with sqlite3.connect(tmp_path / "copy.sqlite") as copy:
        assert copy.execute("SELECT count(*) FROM t").fetchone()[0] == 50
    writer.close()


def test_a_commit_after_a_complete_pass_starts_the_wal_over_without_a_restart(
    tmp_path: Path,
) -> None:
    """What keeps the WAL small without stalling writers: once a pass has copied every
    frame, SQLite's next write transaction writes the WAL from its start."""
    path = tmp_path / "db.sqlite"
    writer = _wal_file(path)
    _write(writer, 100)
    checkpointer = _one_pass(path)
    assert checkpointer.stats.copied_frames == checkpointer.stats.wal_frames > 100
    _write(writer, 1, start=100)
    assert _frames_in_wal(path) < 20  # one insert, not the 100 rows before it
    assert checkpointer.stats.restarts == 0
    writer.close()


def _reader_holding_the_wal(path: Path) -> sqlite3.Connection:
    """A read transaction that started before the checkpoint, as under steady traffic."""
    reader = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM t").fetchone()
    return reader


def test_while_readers_overlap_a_passive_pass_leaves_the_wal_growing(tmp_path: Path) -> None:
    """Why the restart exists: SQLite rewinds the WAL only when no reader is in it."""
    path = tmp_path / "db.sqlite"
    writer = _wal_file(path)
    _write(writer, 100)
    reader = _reader_holding_the_wal(path)
    checkpointer = _one_pass(path)
    _write(writer, 1, start=100)
    reader.execute("COMMIT")
    assert checkpointer.stats.copied_frames == checkpointer.stats.wal_frames > 100
    assert checkpointer.stats.restarts == 0
    assert _frames_in_wal(path) > 100
    reader.close()
    writer.close()


def test_a_wal_past_the_limit_is_rewound_once_its_readers_finish(tmp_path: Path) -> None:
    """A reader on an older snapshot stops the passive pass short of the WAL's end; the
    restart waits for it, copies the rest and lets the next commit write from the start."""
    path = tmp_path / "db.sqlite"
    writer = _wal_file(path)
    _write(writer, 100)
    reader = _reader_holding_the_wal(path)
    _write(writer, 50, start=1000)
    finish = threading.Timer(0.2, lambda: reader.execute("COMMIT"))
    finish.start()
    checkpointer = _one_pass(path, RESTART_PAGES)  # the restart waits for the reader
    finish.join()
    assert checkpointer.stats.restarts == 1
    assert checkpointer.stats.copied_frames == checkpointer.stats.wal_frames
    second_reader = _reader_holding_the_wal(path)
    _write(writer, 1, start=100)
    assert _frames_in_wal(path) < 20  # one insert, not the 150 rows before it
    second_reader.close()
    reader.close()
    writer.close()


def test_a_failing_checkpoint_is_counted_and_the_thread_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "not-a-database"
    path.write_bytes(b"this is not an SQLite file" * 200)
    checkpointer = WalCheckpointer(str(path), restart_pages=RESTART_PAGES)
    with sqlite3.connect(path, isolation_level=None) as own:
        checkpointer.checkpoint_once(own)
        checkpointer.checkpoint_once(own)
    assert checkpointer.stats.failures == 2
    assert checkpointer.stats.passes == 0


async def test_the_loop_database_checkpoints_on_its_thread_and_stops_it_on_dispose(
    tmp_path: Path,
) -> None:
    db = DatabaseSettings(url=sqlite_url(tmp_path), sqlite_checkpoint_interval_ms=10)
    await migrate.upgrade(db)
    database = LoopSqliteDatabase(db)
    checkpointer = database.checkpointer
    assert checkpointer is not None
    try:
        for n in range(200):
            async with database.begin() as conn:
                await conn.execute(insert(replay_keys), {"key": f"k{n}", "expires_at": 1.0})
        for _ in range(500):
            stats = checkpointer.stats
            if stats.passes and stats.wal_frames and stats.copied_frames == stats.wal_frames:
                break
            await asyncio.sleep(0.01)
        assert checkpointer.stats.copied_frames == checkpointer.stats.wal_frames > 0
        assert any(t.name == "sqlite-wal-checkpoint" for t in threading.enumerate())
        async with database.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(replay_keys)) == 200
    finally:
        await database.dispose()
    assert not any(t.name == "sqlite-wal-checkpoint" for t in threading.enumerate())


async def test_the_restart_limit_follows_the_wal_limit_setting(tmp_path: Path) -> None:
    default = LoopSqliteDatabase(DatabaseSettings(url=sqlite_url(tmp_path)))
    small = LoopSqliteDatabase(DatabaseSettings(url=sqlite_url(tmp_path), sqlite_wal_limit_mib=8))
    try:
        assert default.checkpointer is not None and small.checkpointer is not None
        assert default.checkpointer.restart_pages == 256 * 1024 * 1024 // 4096
        assert small.checkpointer.restart_pages == 8 * 1024 * 1024 // 4096
    finally:
        await default.dispose()
        await small.dispose()


def test_an_in_memory_database_has_no_checkpointer() -> None:
    database = LoopSqliteDatabase(DatabaseSettings(url="sqlite+aiosqlite:///:memory:"))
    assert database.checkpointer is None
