"""The SQL ``Storage``: one engine shared by every store."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from backchannel.protocol.ports import (
    AuthRequestStore,
    ClientStore,
    KeyStore,
    OutboxStore,
    ReplayGuard,
    TokenStore,
    UserDirectory,
)
from backchannel.settings import DatabaseSettings
from backchannel.storage.sql.clients import SqlClientStore
from backchannel.storage.sql.devices import SqlDeviceStore
from backchannel.storage.sql.engine import Database, open_database
from backchannel.storage.sql.keys import SqlKeyStore
from backchannel.storage.sql.outbox import SqlOutboxStore
from backchannel.storage.sql.replay import SqlReplayGuard
from backchannel.storage.sql.requests import SqlAuthRequestStore
from backchannel.storage.sql.tokens import SqlTokenStore
from backchannel.storage.sql.users import SqlUserDirectory

_PING = text("SELECT 1")


class SqlStorage:
    def __init__(self, engine: Database) -> None:
        self.engine = engine
        self.clients: ClientStore = SqlClientStore(engine)
        self.users: UserDirectory = SqlUserDirectory(engine)
        self.requests: AuthRequestStore = SqlAuthRequestStore(engine)
        self.tokens: TokenStore = SqlTokenStore(engine)
        self.replay: ReplayGuard = SqlReplayGuard(engine)
        self.keys: KeyStore = SqlKeyStore(engine)
        self.outbox: OutboxStore = SqlOutboxStore(engine)
        self.devices: SqlDeviceStore = SqlDeviceStore(engine)

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(_PING)
        except (SQLAlchemyError, OSError):
            return False
        return True

    async def close(self) -> None:
        await self.engine.dispose()


async def open_sql_storage(db: DatabaseSettings) -> SqlStorage:
    return SqlStorage(open_database(db))
