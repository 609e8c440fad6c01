"""``expire_overdue`` stays cheap with many pending requests: it finds candidates through the
(state, delivery_mode, expires_at) index, one range per mode, and updates them by primary
key, never walking or sorting every pending row."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from backchannel.protocol.model import RequestState
from backchannel.storage import open_storage
from backchannel.storage.sql import SqlStorage
from backchannel.storage.sql.requests import _EXPIRE, request_to_row
from backchannel.storage.sql.tables import auth_requests, timeline_events
from tests.contract import builders
from tests.support.databases import migrated_sqlite

pytestmark = pytest.mark.anyio
T0 = builders.T0


async def test_sqlite_plan_uses_indexes_only(tmp_path: Path) -> None:
    db = await migrated_sqlite(tmp_path)
    storage = await open_storage(db)
    assert isinstance(storage, SqlStorage)
    compiled = _EXPIRE.compile(dialect=storage.engine.dialect)
    await storage.close()
    values = {**compiled.params, "b_now": T0, "b_limit": 1000}
    params = [values[name] for name in compiled.positiontup or ()]
    with sqlite3.connect(tmp_path / "backchannel.db") as connection:
        plan = [row[3] for row in connection.execute(f"EXPLAIN QUERY PLAN {compiled}", params)]
    index = "ix_auth_requests_state_mode_expires_at"
    assert any(f"{index} (state=? AND delivery_mode=? AND expires_at<?)" in p for p in plan)
    assert any("(id_hash=?)" in p for p in plan), plan
    assert not any(p.startswith("SCAN") or "TEMP B-TREE" in p for p in plan), plan


@pytest.mark.slow
async def test_expire_overdue_with_100_000_pending_rows(tmp_path: Path) -> None:
    db = await migrated_sqlite(tmp_path)
    storage = await open_storage(db)
    assert isinstance(storage, SqlStorage)
    rows = [
        request_to_row(builders.request(f"hmac:{n:08d}", expires_at=T0 + (n % 100) * 10))
        for n in range(100_000)
    ]
    try:
        async with storage.engine.begin() as conn:
            await conn.execute(insert(auth_requests), rows)
        assert await storage.requests.expire_overdue(T0 + 5, limit=600) == 600
        assert await storage.requests.expire_overdue(T0 + 5, limit=600) == 400
        assert await storage.requests.expire_overdue(T0 + 5, limit=600) == 0
        async with storage.engine.connect() as conn:
            expired = await conn.scalar(
                select(func.count()).where(auth_requests.c.state == RequestState.EXPIRED.value)
            )
            events = await conn.scalar(select(func.count()).select_from(timeline_events))
        assert (expired, events) == (1000, 1000)
    finally:
        await storage.close()
