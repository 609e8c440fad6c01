"""The outbox in process memory: the reference semantics for ``storage.sql.outbox``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from copy import deepcopy
from dataclasses import replace

from backchannel.protocol.model import OutboxEntry, OutboxState, TimelineEvent
from backchannel.protocol.ports import DuplicateError

# Appends events to a request's timeline (the request store's, so both stay consistent).
TimelineWriter = Callable[[str, Sequence[TimelineEvent]], None]


class MemoryOutboxStore:
    def __init__(self) -> None:
        self._entries: dict[str, OutboxEntry] = {}
        self._timeline: TimelineWriter = lambda _id_hash, _events: None

    def attach_timeline(self, writer: TimelineWriter) -> None:
        self._timeline = writer

    def check_new(self, entries: Sequence[OutboxEntry]) -> None:
        ids = [entry.id for entry in entries]
        if len(set(ids)) != len(ids) or any(i in self._entries for i in ids):
            raise DuplicateError("outbox entry exists")

    def add_now(self, entries: Sequence[OutboxEntry]) -> None:
        """Store ``entries`` (already checked with ``check_new``)."""
        for entry in entries:
            self._entries[entry.id] = deepcopy(entry)

    async def enqueue(self, entries: Sequence[OutboxEntry]) -> None:
        self.check_new(entries)
        self.add_now(entries)

    async def get_entry(self, entry_id: str) -> OutboxEntry | None:
        entry = self._entries.get(entry_id)
        return deepcopy(entry) if entry is not None else None

    async def list_entries(self, id_hash: str | None = None, limit: int = 100) -> list[OutboxEntry]:
        chosen = [e for e in self._entries.values() if id_hash is None or e.id_hash == id_hash]
        chosen.sort(key=lambda e: (e.created_at, e.id))
        return deepcopy(chosen[:limit])

    async def claim_due(
        self, now: float, owner: str, lease_seconds: float, limit: int
    ) -> list[OutboxEntry]:
        due = sorted(
            (e for e in self._entries.values() if _is_claimable(e, now)),
            key=lambda e: (e.next_attempt_at, e.id),
        )[:limit]
        for entry in due:
            entry.lease_owner = owner
            entry.lease_until = now + lease_seconds
            entry.updated_at = now
        return deepcopy(due)

    async def complete(
        self, entry_id: str, owner: str, now: float, events: Sequence[TimelineEvent] = ()
    ) -> bool:
        return self._finish(entry_id, owner, events, state=OutboxState.DELIVERED, now=now)

    async def reschedule(
        self,
        entry_id: str,
        owner: str,
        now: float,
        next_attempt_at: float,
        error: str,
        events: Sequence[TimelineEvent] = (),
    ) -> bool:
        return self._finish(
            entry_id, owner, events, now=now, next_attempt_at=next_attempt_at, last_error=error
        )

    async def fail(
        self,
        entry_id: str,
        owner: str,
        now: float,
        error: str,
        events: Sequence[TimelineEvent] = (),
    ) -> bool:
        return self._finish(
            entry_id, owner, events, state=OutboxState.FAILED, now=now, last_error=error
        )

    async def release(self, owner: str, now: float) -> None:
        return None  # every worker claims here: there is no worker lease

    def _finish(
        self,
        entry_id: str,
        owner: str,
        events: Sequence[TimelineEvent],
        *,
        now: float,
        state: OutboxState = OutboxState.PENDING,
        next_attempt_at: float | None = None,
        last_error: str | None = None,
    ) -> bool:
        entry = self._entries.get(entry_id)
        if entry is None or entry.state != OutboxState.PENDING or entry.lease_owner != owner:
            return False
        finished = replace(
            entry,
            state=state,
            attempts=entry.attempts + 1,
            lease_owner=None,
            lease_until=None,
            updated_at=now,
            next_attempt_at=entry.next_attempt_at if next_attempt_at is None else next_attempt_at,
            last_error=entry.last_error if last_error is None else last_error,
        )
        self._entries[entry_id] = finished
        if entry.id_hash is not None and events:
            self._timeline(entry.id_hash, events)
        return True


def _is_claimable(entry: OutboxEntry, now: float) -> bool:
    if entry.state != OutboxState.PENDING or entry.next_attempt_at > now:
        return False
    return entry.lease_until is None or entry.lease_until <= now
