"""The one-time-value guard in SQL, atomic across processes."""

from __future__ import annotations

from sqlalchemy import Double, bindparam

from backchannel.storage.sql.dialect import upsert_insert
from backchannel.storage.sql.engine import Database
from backchannel.storage.sql.tables import replay_keys


class SqlReplayGuard:
    def __init__(self, engine: Database) -> None:
        self._engine = engine
        insert = upsert_insert(engine, replay_keys)
        # Insert, or take over an expired entry; a live entry makes the statement a no-op,
        # which RETURNING shows as no row. One statement, so two processes cannot both win.
        self._remember = (
            insert.values(key=bindparam("b_key"), expires_at=bindparam("b_expires", type_=Double()))
            .on_conflict_do_update(
                index_elements=[replay_keys.c.key],
                set_={"expires_at": insert.excluded.expires_at},
                where=replay_keys.c.expires_at <= bindparam("b_now", type_=Double()),
            )
            .returning(replay_keys.c.key)
        )

    async def remember(self, key: str, expires_at: float, now: float) -> bool:
        params = {"b_key": key, "b_expires": expires_at, "b_now": now}
        async with self._engine.begin() as conn:
            row = (await conn.execute(self._remember, params)).first()
        return row is not None
