"""WAL checkpoints on a thread of their own, so the event loop never waits for the disk.

With SQLite's automatic checkpoint, the commit that takes the WAL past 1,000 pages copies
those pages into the database file and syncs both files, inline: on the event-loop thread
that is several milliseconds in which no request of this worker is served. Here the loop
connection runs with ``wal_autocheckpoint=0`` and this thread, on its own connection, runs a
``PASSIVE`` checkpoint every ``interval_s``: it copies what was committed since the last one
and never blocks a writer. The stdlib driver releases the GIL inside SQLite, so the copying
and the syncs run beside the loop, not in it.

SQLite rewinds the WAL by itself when a transaction starts after a checkpoint has copied
every frame: whenever writes pause for the length of one pass, which ordinary traffic does
many times a minute. Under traffic that never pauses, a passive pass never catches up and
the file would keep growing. Once it holds more than ``restart_pages`` frames the thread
runs a ``RESTART`` checkpoint: writers wait for it (the loop's ``BEGIN IMMEDIATE`` retries
asynchronously) while it copies the frames since the last pass and syncs both files, which
is 5 to 20 ms on a virtual disk, and the next commit writes the WAL from its start again.
That wait stalls every write of the worker, so the limit is high
(``database.sqlite_wal_limit_mib``, 256 MiB): at 4,000 pages (16 MiB) a busy worker
restarted every quarter second and the stalls alone lifted the token call's p99 by a fifth
with 100,000 stored requests. The file keeps the size it reached (SQLite overwrites it
from the start rather than truncating it, and truncating 200 MiB costs tens of
milliseconds); it is deleted when the last connection closes.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass

import structlog

log = structlog.get_logger(__name__)

DEFAULT_INTERVAL_S = 0.1
# The page size of every database Backchannel creates: SQLite's default.
SQLITE_PAGE_SIZE = 4096


@dataclass
class CheckpointStats:
    passes: int = 0
    restarts: int = 0
    failures: int = 0
    wal_frames: int = 0  # frames in the WAL at the last pass ...
    copied_frames: int = 0  # ... and how many of them are in the database file


class WalCheckpointer:
    """A daemon thread checkpointing one SQLite database file until ``stop()``.
    ``restart_pages`` comes from ``database.sqlite_wal_limit_mib`` (``loop_sqlite``)."""

    def __init__(
        self,
        path: str,
        *,
        restart_pages: int,
        interval_s: float = DEFAULT_INTERVAL_S,
        busy_timeout_ms: int = 5000,
    ) -> None:
        self._path = path
        self._interval_s = interval_s
        self.restart_pages = restart_pages
        self._busy_timeout_ms = busy_timeout_ms
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.stats = CheckpointStats()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="sqlite-wal-checkpoint", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            connection.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}").close()
            while not self._stopping.wait(self._interval_s):
                self.checkpoint_once(connection)
        finally:
            connection.close()

    def checkpoint_once(self, connection: sqlite3.Connection) -> None:
        """One pass: copy what is new; rewind the WAL once it has grown past the limit."""
        try:
            busy, frames = self._checkpoint(connection, "PASSIVE")
            self.stats.passes += 1
            if not busy and frames >= self.restart_pages:
                busy, _ = self._checkpoint(connection, "RESTART")
                self.stats.restarts += int(not busy)
        except sqlite3.Error as error:
            # Another process's checkpoint or a long reader: the next pass tries again.
            self.stats.failures += 1
            log.warning("sqlite.checkpoint_failed", error=str(error))

    def _checkpoint(self, connection: sqlite3.Connection, mode: str) -> tuple[int, int]:
        """(busy, frames in the WAL)."""
        row = connection.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        busy, frames, copied = (int(value) for value in row)
        self.stats.wal_frames, self.stats.copied_frames = frames, copied
        return busy, frames
