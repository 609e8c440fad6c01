"""Many pending requests for a bench database, and the expiry sweeper timed over them.

Used through ``seed_bench.py add-pending`` and ``seed_bench.py sweep`` (issue 7 item 6).
The rows are written in bulk with SQLAlchemy Core on a plain engine (no HTTP, no
per-request transaction), in the shape ``SqlAuthRequestStore.create_request`` writes: one
``auth_requests`` row and its ``created`` timeline event. The sweeper is the server's own
``ExpirySweeper.run_once`` on the runtime storage.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from backchannel.cli.common import open_provider
from backchannel.outbox.runner import ExpirySweeper
from backchannel.protocol.model import AuthRequest, DeliveryMode
from backchannel.protocol.secrets import SecretHasher
from backchannel.settings import Settings, load_settings
from backchannel.storage.sql.engine import create_engine
from backchannel.storage.sql.requests import request_to_row
from backchannel.storage.sql.tables import auth_requests, timeline_events, users

BATCH = 5000
MAX_PASSES = 1000

# The sweeper's candidate queries (``storage/sql/requests.py``), spelled out for EXPLAIN.
SWEEP_QUERIES = {
    "overdue push (list_overdue)": (
        "SELECT * FROM auth_requests WHERE state = 'pending' AND expires_at <= {now} "
        "AND delivery_mode = 'push' ORDER BY expires_at, id_hash LIMIT 100"
    ),
    "overdue poll/ping (expire_overdue)": (
        "SELECT id_hash FROM auth_requests WHERE state = 'pending' "
        "AND delivery_mode IN ('poll', 'ping') AND expires_at <= {now} LIMIT 1000"
    ),
    "approved push, unpushed (list_unpushed)": (
        "SELECT * FROM auth_requests WHERE state = 'approved' AND delivery_mode = 'push' "
        "AND (decided_at IS NULL OR decided_at < {now} - 10) AND expires_at > {now} "
        "ORDER BY decided_at NULLS FIRST, id_hash LIMIT 100"
    ),
    "a user's pending requests (count_pending, bc-authorize's cap)": (
        "SELECT count(*) FROM auth_requests WHERE subject = 'bench-user-0' "
        "AND state = 'pending' AND expires_at > {now}"
    ),
}


async def add_pending(
    client_id: str, count: int, user_count: int, expires_in: float
) -> dict[str, Any]:
    """``count`` pending poll requests of ``client_id``, spread over bench-user-0..N-1."""
    settings = load_settings()
    async with open_provider(settings):  # migrates an embedded SQLite database first
        pass
    engine = create_engine(settings.database)
    try:
        started = time.perf_counter()
        subjects = await _bench_subjects(engine, user_count)
        hasher = SecretHasher(b"bench-pending-rows-are-not-real-ids!")
        now = time.time()
        for first in range(0, count, BATCH):
            batch = [
                _pending(hasher, client_id, subjects[i % len(subjects)], now, expires_in, i)
                for i in range(first, min(first + BATCH, count))
            ]
            async with engine.begin() as conn:
                await conn.execute(insert(auth_requests), [request_to_row(r) for r in batch])
                await conn.execute(insert(timeline_events), [_created(r) for r in batch])
        return {"inserted": count, "seconds": round(time.perf_counter() - started, 2)}
    finally:
        await engine.dispose()


async def _bench_subjects(engine: AsyncEngine, user_count: int) -> list[str]:
    names = [f"bench-user-{i}" for i in range(user_count)]
    statement = select(users.c.subject).where(users.c.username.in_(names))
    async with engine.connect() as conn:
        subjects = list((await conn.execute(statement)).scalars())
    if not subjects:
        raise SystemExit("no bench users in this database: run `seed_bench.py seed` first")
    return subjects


def _pending(
    hasher: SecretHasher, client_id: str, subject: str, now: float, expires_in: float, i: int
) -> AuthRequest:
    created = now - 1.0 + i * 1e-6  # distinct, ordered creation times
    return AuthRequest(
        id_hash=hasher.fast(f"bench-pending-{now}-{i}"),
        client_id=client_id,
        subject=subject,
        scope=("openid",),
        delivery_mode=DeliveryMode.POLL,
        created_at=created,
        expires_at=created + expires_in,
        interval=5,
    )


def _created(request: AuthRequest) -> dict[str, Any]:
    return {"id_hash": request.id_hash, "at": request.created_at, "kind": "created", "detail": {}}


async def time_sweeps() -> dict[str, Any]:
    """One idle pass (nothing overdue), then every pending request made overdue and the
    sweeper run until a pass expires nothing; the timings of every pass, in ms."""
    settings = load_settings()
    engine = create_engine(settings.database)
    try:
        async with open_provider(settings) as provider:
            sweeper = ExpirySweeper(provider)
            idle_before = await _timed_pass(sweeper)
            overdue = await _make_overdue(engine)
            plans = await _plans(engine, settings)
            passes: list[dict[str, Any]] = []
            while len(passes) < MAX_PASSES:
                expired, ms = await _timed_pass(sweeper)
                passes.append({"expired": expired, "ms": ms})
                if expired == 0:
                    break
            idle_after = await _timed_pass(sweeper)
    finally:
        await engine.dispose()
    working = [p["ms"] for p in passes if p["expired"]]
    return {
        "made_overdue": overdue,
        "expired_total": sum(p["expired"] for p in passes),
        "passes_with_work": len(working),
        "rows_per_pass": max((p["expired"] for p in passes), default=0),
        "pass_ms": _spread(working),
        "idle_pass_ms_before": idle_before[1],
        "idle_pass_ms_after": idle_after[1],
        "sweep_seconds_total": round(sum(working) / 1000, 2),
        "passes": passes,
        "plans": plans,
    }


async def _timed_pass(sweeper: ExpirySweeper) -> tuple[int, float]:
    started = time.perf_counter()
    expired = await sweeper.run_once()
    return expired, round((time.perf_counter() - started) * 1000, 2)


async def _make_overdue(engine: AsyncEngine) -> int:
    statement = (
        update(auth_requests)
        .where(auth_requests.c.state == "pending")
        .values(expires_at=time.time() - 1.0)
    )
    async with engine.begin() as conn:
        return int((await conn.execute(statement)).rowcount)


async def _plans(engine: AsyncEngine, settings: Settings) -> dict[str, list[str]]:
    """The query plans of the sweeper's candidate queries, with the backlog in place."""
    prefix = "EXPLAIN QUERY PLAN " if settings.database.is_sqlite else "EXPLAIN ANALYZE "
    plans: dict[str, list[str]] = {}
    async with engine.connect() as conn:
        if not settings.database.is_sqlite:
            await conn.execute(text("ANALYZE auth_requests"))
        for name, sql in SWEEP_QUERIES.items():
            rows = (await conn.execute(text(prefix + sql.format(now=time.time())))).all()
            plans[name] = [" ".join(str(v) for v in row) for row in rows]
    return plans


def _spread(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "min": min(values),
        "median": round(statistics.median(values), 2),
        "max": max(values),
    }
