"""Event bus over PostgreSQL LISTEN/NOTIFY on the configured database.

One dedicated asyncpg connection per process listens on ``backchannel_events`` and sends
``pg_notify(channel, topic)``; the payload is the topic, which names a hash or a subject,
never a secret. Notifications from this very connection are skipped: the publish already
woke local waiters.
"""

from __future__ import annotations

import asyncio

import asyncpg
from sqlalchemy.engine import make_url

from backchannel.events.relay import RelayedEventBus

CHANNEL = "backchannel_events"


def asyncpg_dsn(sqlalchemy_url: str) -> str:
    """``postgresql+asyncpg://...`` as a plain libpq DSN for asyncpg.connect."""
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class PostgresEventBus(RelayedEventBus):
    backend = "postgres"

    def __init__(self, dsn: str, *, channel: str = CHANNEL, reconnect_delay: float = 1.0) -> None:
        super().__init__(reconnect_delay=reconnect_delay)
        self._dsn = dsn
        self._channel = channel
        self._connection: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._send_lock = asyncio.Lock()

    @property
    def server_pid(self) -> int | None:
        """The backend pid of the listening connection (operators, tests)."""
        return None if self._connection is None else self._connection.get_server_pid()

    async def _connect(self) -> None:
        connection = await asyncpg.connect(self._dsn)
        try:
            await connection.add_listener(self._channel, self._on_notification)
        except BaseException:
            await connection.close()
            raise
        self._lost = asyncio.Event()
        connection.add_termination_listener(self._on_termination)
        self._connection = connection

    async def _until_lost(self) -> None:
        await self._lost.wait()

    async def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            connection.terminate()

    async def _send(self, topic: str) -> None:
        connection = self._connection
        if connection is None or connection.is_closed():
            raise ConnectionError("the LISTEN connection is down")
        # One asyncpg connection runs one statement at a time.
        async with self._send_lock:
            await connection.execute("SELECT pg_notify($1, $2)", self._channel, topic)

    async def _on_notification(
        self, connection: asyncpg.Connection, pid: int, channel: str, payload: str
    ) -> None:
        if pid != connection.get_server_pid():
            await self._received(payload)

    def _on_termination(self, _connection: asyncpg.Connection) -> None:
        self._lost.set()
