"""``expire_overdue`` stays cheap with many pending requests: it finds candidates through the
partial (delivery_mode, expires_at) index of pending requests, one range per mode, and
updates them by primary key, never walking or sorting every pending row. The other queries
of the partial indexes use them too."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from backchannel.protocol.model import RequestState
from backchannel.storage import open_storage
from backchannel.storage.sql import SqlStorage
from backchannel.storage.sql.requests import _COUNT_PENDING, _EXPIRE, _UNPUSHED, request_to_row
from backchannel.storage.sql.tables import auth_requests, timeline_events
from tests.contract import builders
from tests.support.databases import migrated_sqlite

pytestmark = pytest.mark.anyio
T0 = builders.T0


async def _sqlite_plan(tmp_path: Path, statement: Any, values: dict[str, Any]) -> list[str]:
    db = await migrated_sqlite(tmp_path)
    storage = await open_storage(db)
    assert isinstance(storage, SqlStorage)
    compiled = statement.compile(dialect=storage.engine.dialect)
    await storage.close()
    bound = {**compiled.params, **values}
    params = [bound[name] for name in compiled.positiontup or ()]
    with sqlite3.connect(tmp_path / "backchannel.db") as connection:
        return [row[3] for row in connection.execute(f"EXPLAIN QUERY PLAN {compiled}", params)]


async def test_sqlite_plan_uses_indexes_only(tmp_path: Path) -> None:
    plan = await _sqlite_plan(tmp_path, _EXPIRE, {"b_now": T0, "b_limit": 1000})
    index = "ix_auth_requests_pending_mode_expires_at"
    assert any(f"{index} (delivery_mode=? AND expires_at<?)" in p for p in plan), plan
    assert any("(id_hash=?)" in p for p in plan), plan
    assert not any(p.startswith("SCAN") or "TEMP B-TREE" in p for p in plan), plan


async def test_the_per_user_cap_counts_through_the_pending_index(tmp_path: Path) -> None:
    """bc-authorize's count of the user's pending requests (item 6 of issue 7: cheap with
    many pending requests) reads only the user's pending entries."""
    plan = await _sqlite_plan(tmp_path, _COUNT_PENDING, {"b_subject": "u", "b_now": T0})
    index = "ix_auth_requests_pending_subject_expires_at"
    assert plan == [f"SEARCH auth_requests USING INDEX {index} (subject=? AND expires_at>?)"]


async def test_unpushed_push_requests_are_found_through_their_own_index(tmp_path: Path) -> None:
    """The index holds only approved push requests (normally none: their tokens go out at
    the approval), in the order the query returns them."""
    values = {"b_now": T0, "b_before": T0, "b_limit": 100}
    plan = await _sqlite_plan(tmp_path, _UNPUSHED, values)
    assert plan == ["SCAN auth_requests USING INDEX ix_auth_requests_approved_push_decided_at"]


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
