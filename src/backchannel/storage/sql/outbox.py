"""The outbox in SQL.

Claiming picks candidates, then leases them with an UPDATE whose WHERE re-checks that each
is still due and unleased, so two claimers can never both get an entry. On PostgreSQL the
candidates are locked with ``SELECT ... FOR UPDATE SKIP LOCKED`` (in the same transaction),
so concurrent workers take different rows instead of queueing behind each other. On SQLite
(one writer at a time anyway) only the holder of the ``worker_leases`` row claims, so a
second worker process on the same file stays idle until the first one's lease runs out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import BindParameter, Double, and_, bindparam, insert, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from backchannel.protocol.model import OutboxEntry, OutboxState, TimelineEvent
from backchannel.protocol.ports import DuplicateError
from backchannel.storage.sql.dialect import upsert_insert
from backchannel.storage.sql.engine import Database, DatabaseConnection, read_engine
from backchannel.storage.sql.prepared import insert_into
from backchannel.storage.sql.tables import timeline_events
from backchannel.storage.sql.tables_outbox import outbox_entries, worker_leases

o = outbox_entries
_PENDING = OutboxState.PENDING.value
_WORKER_LEASE = "outbox"
_NOW: BindParameter[float] = bindparam("b_now", type_=Double())
_CLAIMABLE = and_(
    o.c.state == _PENDING,
    o.c.next_attempt_at <= _NOW,
    or_(o.c.lease_until.is_(None), o.c.lease_until <= _NOW),
)
_FINISH = update(o).where(
    o.c.id == bindparam("b_id"),
    o.c.state == _PENDING,
    o.c.lease_owner == bindparam("b_owner"),
)


def entry_to_row(entry: OutboxEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "kind": entry.kind,
        "id_hash": entry.id_hash,
        "client_id": entry.client_id,
        "url": entry.url,
        "payload": entry.payload,
        "state": entry.state.value,
        "attempts": entry.attempts,
        "next_attempt_at": entry.next_attempt_at,
        "lease_owner": entry.lease_owner,
        "lease_until": entry.lease_until,
        "created_at": entry.created_at,
        "updated_at": entry.updated_at,
        "deliver_until": entry.deliver_until,
        "last_error": entry.last_error,
    }


def entry_from_row(row: RowMapping) -> OutboxEntry:
    values = dict(row)
    values["state"] = OutboxState(values["state"])
    return OutboxEntry(**values)


async def insert_entries(conn: DatabaseConnection, entries: Sequence[OutboxEntry]) -> None:
    """Add ``entries`` inside the caller's transaction (the request store uses this)."""
    if entries:
        await conn.execute(insert_into(o), [entry_to_row(e) for e in entries])


class SqlOutboxStore:
    def __init__(self, engine: Database) -> None:
        self._engine = engine
        self._reader = read_engine(engine)
        self._postgres = engine.dialect.name == "postgresql"

    async def enqueue(self, entries: Sequence[OutboxEntry]) -> None:
        try:
            async with self._engine.begin() as conn:
                await insert_entries(conn, entries)
        except IntegrityError:
            raise DuplicateError("outbox entry exists") from None

    async def get_entry(self, entry_id: str) -> OutboxEntry | None:
        async with self._reader.connect() as conn:
            row = (await conn.execute(select(o).where(o.c.id == entry_id))).mappings().first()
        return entry_from_row(row) if row is not None else None

    async def list_entries(self, id_hash: str | None = None, limit: int = 100) -> list[OutboxEntry]:
        statement = select(o).order_by(o.c.created_at, o.c.id).limit(limit)
        if id_hash is not None:
            statement = statement.where(o.c.id_hash == id_hash)
        async with self._reader.connect() as conn:
            rows = (await conn.execute(statement)).mappings().all()
        return [entry_from_row(row) for row in rows]

    async def claim_due(
        self, now: float, owner: str, lease_seconds: float, limit: int
    ) -> list[OutboxEntry]:
        lease_until = now + lease_seconds
        async with self._engine.begin() as conn:
            if not self._postgres and not await self._hold_worker_lease(
                conn, now, owner, lease_until
            ):
                return []
            candidates = select(o.c.id).where(_CLAIMABLE).order_by(o.c.next_attempt_at).limit(limit)
            if self._postgres:
                candidates = candidates.with_for_update(skip_locked=True)
            ids = list((await conn.execute(candidates, {"b_now": now})).scalars())
            if not ids:
                return []
            statement = (
                update(o)
                .where(o.c.id.in_(ids), _CLAIMABLE)
                .values(lease_owner=owner, lease_until=lease_until, updated_at=now)
                .returning(*o.c)
            )
            rows = (await conn.execute(statement, {"b_now": now})).mappings().all()
        return sorted((entry_from_row(r) for r in rows), key=lambda e: (e.next_attempt_at, e.id))

    async def complete(
        self, entry_id: str, owner: str, now: float, events: Sequence[TimelineEvent] = ()
    ) -> bool:
        values = {"state": OutboxState.DELIVERED.value}
        return await self._finish(entry_id, owner, now, values, events)

    async def reschedule(
        self,
        entry_id: str,
        owner: str,
        now: float,
        next_attempt_at: float,
        error: str,
        events: Sequence[TimelineEvent] = (),
    ) -> bool:
        values = {"next_attempt_at": next_attempt_at, "last_error": error}
        return await self._finish(entry_id, owner, now, values, events)

    async def fail(
        self,
        entry_id: str,
        owner: str,
        now: float,
        error: str,
        events: Sequence[TimelineEvent] = (),
    ) -> bool:
        values = {"state": OutboxState.FAILED.value, "last_error": error}
        return await self._finish(entry_id, owner, now, values, events)

    async def _finish(
        self,
        entry_id: str,
        owner: str,
        now: float,
        values: dict[str, Any],
        events: Sequence[TimelineEvent],
    ) -> bool:
        statement = _FINISH.values(
            attempts=o.c.attempts + 1,
            lease_owner=None,
            lease_until=None,
            updated_at=now,
            **values,
        ).returning(o.c.id_hash)
        async with self._engine.begin() as conn:
            result = await conn.execute(statement, {"b_id": entry_id, "b_owner": owner})
            row = result.first()
            if row is None:
                return False
            if row.id_hash is not None and events:
                await conn.execute(
                    insert(timeline_events),
                    [
                        {"id_hash": row.id_hash, "at": e.at, "kind": e.kind, "detail": e.detail}
                        for e in events
                    ],
                )
        return True

    async def release(self, owner: str, now: float) -> None:
        if self._postgres:
            return  # no worker lease: workers share the claims (SKIP LOCKED)
        ended = (
            update(worker_leases)
            .where(worker_leases.c.name == _WORKER_LEASE, worker_leases.c.owner == owner)
            .values(lease_until=now)
        )
        async with self._engine.begin() as conn:
            await conn.execute(ended)

    async def _hold_worker_lease(
        self, conn: DatabaseConnection, now: float, owner: str, lease_until: float
    ) -> bool:
        """Take or renew the single SQLite worker lease. Being the first statement, the
        upsert also takes SQLite's write lock for the rest of the claim."""
        leases = worker_leases
        statement = upsert_insert(self._engine, leases).values(
            name=_WORKER_LEASE, owner=owner, lease_until=lease_until
        )
        statement = statement.on_conflict_do_update(
            index_elements=[leases.c.name],
            set_={"owner": owner, "lease_until": lease_until},
            where=or_(leases.c.owner == owner, leases.c.lease_until <= now),
        )
        await conn.execute(statement)
        holder = await conn.execute(select(leases.c.owner).where(leases.c.name == _WORKER_LEASE))
        return bool(holder.scalar_one() == owner)


__all__ = ["SqlOutboxStore", "entry_from_row", "entry_to_row", "insert_entries"]
