"""Authentication requests and their timelines in SQL.

Every state change is one conditional UPDATE (``WHERE id_hash = :id AND state = :expected``)
whose row count says who won, with the timeline event written in the same transaction; on
PostgreSQL in the same statement (``single_statement``) unless outbox entries go with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from typing import Any

from sqlalchemy import (
    Double,
    Integer,
    bindparam,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from backchannel.protocol.model import (
    AuthRequest,
    Consent,
    DeliveryMode,
    OutboxEntry,
    RefreshToken,
    RequestState,
    TimelineEvent,
)
from backchannel.protocol.ports import DuplicateError, MissingError
from backchannel.storage.memory import MUTABLE_REQUEST_FIELDS
from backchannel.storage.sql.devices import consent_to_row
from backchannel.storage.sql.engine import Database, DatabaseConnection, read_engine
from backchannel.storage.sql.kept_reads import NOT_KEPT, copier, kept_reads
from backchannel.storage.sql.outbox import insert_entries
from backchannel.storage.sql.prepared import insert_into
from backchannel.storage.sql.single_statement import (
    insert_once,
    insert_returning_key,
    prefixed,
    with_event,
)
from backchannel.storage.sql.tables import (
    APPROVED_PUSH_ONLY,
    PENDING_ONLY,
    auth_requests,
    refresh_tokens,
    timeline_events,
)
from backchannel.storage.sql.tables_devices import consents
from backchannel.storage.sql.tokens import refresh_token_to_row

t = auth_requests
_BY_ID = t.c.id_hash == bindparam("b_id")
_GET = select(t).where(_BY_ID)
# Every mutable field bound by name: one statement (and one cache entry) for every write.
_MUTABLE_BINDS = {
    name: bindparam(f"v_{name}", type_=t.c[name].type) for name in MUTABLE_REQUEST_FIELDS
}
_TRANSITION = update(t).where(_BY_ID, t.c.state == bindparam("b_expected")).values(_MUTABLE_BINDS)
_POLL_VALUES = {
    "last_polled_at": bindparam("v_last_polled_at", type_=Double()),
    "interval": bindparam("v_interval", type_=Integer()),
}
_POLL_FIRST = update(t).where(_BY_ID, t.c.last_polled_at.is_(None)).values(_POLL_VALUES)
_POLL_AGAIN = (
    update(t)
    .where(_BY_ID, t.c.last_polled_at == bindparam("b_previous", type_=Double()))
    .values(_POLL_VALUES)
)
_NEWEST_FIRST = (t.c.created_at.desc(), t.c.id_hash.desc())
_INSERT_REQUEST = insert_into(t)
_INSERT_EVENT = insert_into(timeline_events)
_INSERT_CONSENT = insert_into(consents)
_TIMELINE = (
    select(timeline_events.c.at, timeline_events.c.kind, timeline_events.c.detail)
    .where(timeline_events.c.id_hash == bindparam("b_id"))
    .order_by(timeline_events.c.id)
)
_PENDING = RequestState.PENDING.value
# PostgreSQL: each write with its event (and consent or refresh token) as one statement.
_CREATED = insert_returning_key(t, "r_", "created")
_ONE_CREATE = with_event(_CREATED)
_ONE_CREATE_WITH_CONSENT = with_event(_CREATED, insert_once(consents, _CREATED, "c_", "consent"))
_WON = _TRANSITION.returning(t.c.id_hash).cte("won")
_ONE_TRANSITION = with_event(_WON)
_ONE_REDEEM_WITH_REFRESH = with_event(_WON, insert_once(refresh_tokens, _WON, "t_", "refresh"))
_POLLED_FIRST = _POLL_FIRST.returning(t.c.id_hash).cte("polled")
_POLLED_AGAIN = _POLL_AGAIN.returning(t.c.id_hash).cte("polled")
_ONE_POLL_FIRST = with_event(_POLLED_FIRST)
_ONE_POLL_AGAIN = with_event(_POLLED_AGAIN)


def _expire_modes(modes: Sequence[DeliveryMode]) -> Any:
    """Pending requests of these delivery modes past their expiry, set to expired.

    The subquery finds candidates through the (state, delivery_mode, expires_at) index, one
    range per mode; it has no ORDER BY, so it stops at the limit instead of sorting every
    overdue row (which ones of them a batch takes does not matter). The state check on the
    outer UPDATE keeps a concurrent sweep or decision from being overwritten; it compares
    ``state || ''`` so that SQLite finds the rows by primary key instead of walking every
    pending row through the index."""
    candidates = (
        select(t.c.id_hash)
        .where(
            PENDING_ONLY,
            # Plain binds, not an expanding list: the statement compiles once.
            t.c.delivery_mode.in_([literal(m.value) for m in modes]),
            t.c.expires_at <= bindparam("b_now", type_=Double()),
        )
        .limit(bindparam("b_limit", type_=Integer()))
        .scalar_subquery()
    )
    return (
        update(t)
        .where(t.c.id_hash.in_(candidates), t.c.state.concat("") == _PENDING)
        .values(state=RequestState.EXPIRED.value)
        .returning(t.c.id_hash)
    )


_EXPIRE = _expire_modes(tuple(DeliveryMode))


_COUNT_PENDING = select(func.count()).where(
    t.c.subject == bindparam("b_subject"),
    PENDING_ONLY,
    t.c.expires_at > bindparam("b_now", type_=Double()),
)
_UNPUSHED = (
    select(t)
    .where(
        APPROVED_PUSH_ONLY,
        or_(t.c.decided_at.is_(None), t.c.decided_at < bindparam("b_before", type_=Double())),
    )
    .order_by(t.c.decided_at.asc().nulls_first(), t.c.id_hash)
    .limit(bindparam("b_limit", type_=Integer()))
)


def request_to_row(request: AuthRequest) -> dict[str, Any]:
    return {
        "id_hash": request.id_hash,
        "client_id": request.client_id,
        "subject": request.subject,
        "scope": list(request.scope),
        "delivery_mode": request.delivery_mode.value,
        "created_at": request.created_at,
        "expires_at": request.expires_at,
        "interval": request.interval,
        "state": request.state.value,
        "acr_values": list(request.acr_values),
        "binding_message": request.binding_message,
        "client_notification_token": request.client_notification_token,
        "delivery_secret": request.delivery_secret,
        "authorization_details": request.authorization_details,
        "requested_expiry": request.requested_expiry,
        "last_polled_at": request.last_polled_at,
        "decided_at": request.decided_at,
        "auth_time": request.auth_time,
        "acr": request.acr,
        "amr": list(request.amr),
    }


def request_from_row(row: RowMapping) -> AuthRequest:
    return AuthRequest(
        id_hash=row["id_hash"],
        client_id=row["client_id"],
        subject=row["subject"],
        scope=tuple(row["scope"]),
        delivery_mode=DeliveryMode(row["delivery_mode"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        interval=row["interval"],
        state=RequestState(row["state"]),
        acr_values=tuple(row["acr_values"]),
        binding_message=row["binding_message"],
        client_notification_token=row["client_notification_token"],
        delivery_secret=row["delivery_secret"],
        authorization_details=row["authorization_details"],
        requested_expiry=row["requested_expiry"],
        last_polled_at=row["last_polled_at"],
        decided_at=row["decided_at"],
        auth_time=row["auth_time"],
        acr=row["acr"],
        amr=tuple(row["amr"]),
    )


def _event_row(id_hash: str, event: TimelineEvent) -> dict[str, Any]:
    return {"id_hash": id_hash, "at": event.at, "kind": event.kind, "detail": event.detail}


def _event_params(event: TimelineEvent) -> dict[str, Any]:
    """The event's binds in the single statements (``single_statement``)."""
    return {"e_at": event.at, "e_kind": event.kind, "e_detail": event.detail}


def _transition_params(request: AuthRequest, expected: RequestState) -> dict[str, Any]:
    """``_TRANSITION``'s binds: the request's mutable fields, if it is still ``expected``."""
    row = request_to_row(request)
    params = {f"v_{name}": row[name] for name in MUTABLE_REQUEST_FIELDS}
    params["b_id"] = request.id_hash
    params["b_expected"] = expected.value
    return params


_copy_request = copier(AuthRequest, "authorization_details")


class SqlAuthRequestStore:
    """On SQLite a request read or written here is kept in memory (``kept_reads``) while
    no other connection commits: the approval and the token call of a flow find the
    request bc-authorize stored without reading it again. Every write of this store keeps
    what it stored or forgets the request; a conditional write that lost, or a failed
    block, forgets it."""

    def __init__(self, engine: Database) -> None:
        self._engine = engine
        self._reader = read_engine(engine)
        # In flight at once: about the concurrency; a full cache is emptied, not pruned.
        self._kept = kept_reads(engine, _copy_request, limit=256, of_kept_tables=False)
        # PostgreSQL: a write without outbox entries is one statement (single_statement).
        self._single_statements = engine.dialect.name == "postgresql"

    async def create_request(
        self,
        request: AuthRequest,
        event: TimelineEvent,
        deliveries: Sequence[OutboxEntry] = (),
        consent: Consent | None = None,
    ) -> None:
        try:
            if self._single_statements and not deliveries:
                params = prefixed(request_to_row(request), "r_") | _event_params(event)
                statement = _ONE_CREATE
                if consent is not None:
                    statement = _ONE_CREATE_WITH_CONSENT
                    params |= prefixed(consent_to_row(consent), "c_")
                await self._write_one(statement, params)
            else:
                async with self._engine.begin() as conn:
                    await conn.execute(_INSERT_REQUEST, request_to_row(request))
                    await conn.execute(_INSERT_EVENT, _event_row(request.id_hash, event))
                    if consent is not None:
                        await conn.execute(_INSERT_CONSENT, consent_to_row(consent))
                    await insert_entries(conn, deliveries)
        except IntegrityError:
            raise DuplicateError("auth request, consent or outbox entry exists") from None
        self._kept.keep(request.id_hash, request)

    async def get_request(self, id_hash: str) -> AuthRequest | None:
        kept = self._kept
        async with self._reader.connect() as conn:
            if (answer := kept.get(id_hash)) is not NOT_KEPT:
                return answer
            row = (await conn.execute(_GET, {"b_id": id_hash})).mappings().first()
            if row is None:  # unknown ids come from clients: never kept
                return None
            request = request_from_row(row)
            kept.keep(id_hash, request)
        return request

    async def transition(
        self,
        request: AuthRequest,
        expected: RequestState,
        event: TimelineEvent,
        deliveries: Sequence[OutboxEntry] = (),
    ) -> bool:
        try:
            if self._single_statements and not deliveries:
                params = _transition_params(request, expected) | _event_params(event)
                won = await self._write_one(_ONE_TRANSITION, params)
            else:
                async with self._forgetting(request.id_hash) as conn:
                    won = await self._conditional_write(conn, request, expected, event)
                    if won:
                        await insert_entries(conn, deliveries)
        except IntegrityError:
            raise DuplicateError("outbox entry exists") from None
        if won:
            self._kept.keep(request.id_hash, request)
        return won

    async def record_poll(
        self,
        request: AuthRequest,
        previous_poll: float | None,
        event: TimelineEvent | None,
    ) -> bool:
        params: dict[str, Any] = {
            "b_id": request.id_hash,
            "v_last_polled_at": request.last_polled_at,
            "v_interval": request.interval,
        }
        first = previous_poll is None
        if not first:
            params["b_previous"] = previous_poll
        statement = _POLL_FIRST if first else _POLL_AGAIN
        if self._single_statements:
            if event is None:
                return await self._write_one(statement, params)
            params |= _event_params(event)
            return await self._write_one(_ONE_POLL_FIRST if first else _ONE_POLL_AGAIN, params)
        async with self._forgetting(request.id_hash) as conn:
            if (await conn.execute(statement, params)).rowcount != 1:
                return False
            if event is not None:
                await conn.execute(_INSERT_EVENT, _event_row(request.id_hash, event))
        return True

    async def redeem(
        self,
        request: AuthRequest,
        event: TimelineEvent,
        refresh_token: RefreshToken | None,
        deliveries: Sequence[OutboxEntry] = (),
    ) -> bool:
        redeemed = replace(request, state=RequestState.REDEEMED)
        try:
            if self._single_statements and not deliveries:
                won = await self._redeem_in_one(redeemed, event, refresh_token)
            else:
                async with self._forgetting(request.id_hash) as conn:
                    won = await self._conditional_write(
                        conn, redeemed, RequestState.APPROVED, event
                    )
                    if won and refresh_token is not None:
                        await conn.execute(
                            insert_into(refresh_tokens), refresh_token_to_row(refresh_token)
                        )
                    if won:
                        await insert_entries(conn, deliveries)
        except IntegrityError:
            raise DuplicateError("refresh token or outbox entry exists") from None
        if won:
            self._kept.keep(request.id_hash, redeemed)
        return won

    async def add_event(self, id_hash: str, event: TimelineEvent) -> None:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(_INSERT_EVENT, _event_row(id_hash, event))
        except IntegrityError:
            raise MissingError("no such auth request") from None

    async def timeline(self, id_hash: str) -> list[TimelineEvent]:
        async with self._reader.connect() as conn:
            rows = (await conn.execute(_TIMELINE, {"b_id": id_hash})).all()
        return [TimelineEvent(at=row.at, kind=row.kind, detail=row.detail) for row in rows]

    async def list_requests(
        self, state: RequestState | None = None, limit: int = 100
    ) -> list[AuthRequest]:
        statement = select(t).order_by(*_NEWEST_FIRST).limit(limit)
        if state is not None:
            statement = statement.where(t.c.state == state.value)
        return await self._select_many(statement)

    async def find_by_ref(self, ref: str) -> list[AuthRequest]:
        statement = select(t).where(t.c.id_hash.startswith(ref, autoescape=True))
        return await self._select_many(statement.order_by(*_NEWEST_FIRST))

    async def expire_overdue(
        self, now: float, limit: int = 1000, modes: Sequence[DeliveryMode] | None = None
    ) -> int:
        statement = _EXPIRE if modes is None else _expire_modes(modes)
        async with self._kept.forgetting(self._engine.begin()) as conn:
            result = await conn.execute(statement, {"b_now": now, "b_limit": limit})
            expired = list(result.scalars())
            if expired:
                event = TimelineEvent(at=now, kind="expired")
                await conn.execute(_INSERT_EVENT, [_event_row(i, event) for i in expired])
        return len(expired)

    async def list_overdue(
        self, now: float, mode: DeliveryMode, limit: int = 100
    ) -> list[AuthRequest]:
        statement = (
            select(t)
            .where(PENDING_ONLY, t.c.expires_at <= now, t.c.delivery_mode == mode.value)
            .order_by(t.c.expires_at, t.c.id_hash)
            .limit(limit)
        )
        return await self._select_many(statement)

    async def list_unpushed(self, decided_before: float, limit: int = 100) -> list[AuthRequest]:
        params = {"b_before": decided_before, "b_limit": limit}
        async with self._reader.connect() as conn:
            rows = (await conn.execute(_UNPUSHED, params)).mappings().all()
        return [request_from_row(row) for row in rows]

    async def count_pending(self, subject: str, now: float) -> int:
        async with self._reader.connect() as conn:
            result = await conn.execute(_COUNT_PENDING, {"b_subject": subject, "b_now": now})
            return int(result.scalar_one())

    async def _conditional_write(
        self,
        conn: DatabaseConnection,
        request: AuthRequest,
        expected: RequestState,
        event: TimelineEvent,
    ) -> bool:
        if (await conn.execute(_TRANSITION, _transition_params(request, expected))).rowcount != 1:
            return False
        await conn.execute(_INSERT_EVENT, _event_row(request.id_hash, event))
        return True

    async def _redeem_in_one(
        self, redeemed: AuthRequest, event: TimelineEvent, refresh_token: RefreshToken | None
    ) -> bool:
        params = _transition_params(redeemed, RequestState.APPROVED) | _event_params(event)
        if refresh_token is None:
            return await self._write_one(_ONE_TRANSITION, params)
        params |= prefixed(refresh_token_to_row(refresh_token), "t_")
        return await self._write_one(_ONE_REDEEM_WITH_REFRESH, params)

    async def _write_one(self, statement: Any, params: dict[str, Any]) -> bool:
        """One statement in autocommit (PostgreSQL, ``single_statement``); True if its last
        INSERT wrote a row, that is, if its conditional write won."""
        async with self._engine.connect() as conn:
            return (await conn.execute(statement, params)).rowcount == 1

    def _forgetting(self, id_hash: str) -> AbstractAsyncContextManager[DatabaseConnection]:
        """A write block on one request that forgets the kept request first: whatever the
        block ends with, a later read goes to the database unless the caller keeps what
        it stored."""
        self._kept.forget(id_hash)
        return self._engine.begin()

    async def _select_many(self, statement: Any) -> list[AuthRequest]:
        async with self._reader.connect() as conn:
            rows = (await conn.execute(statement)).mappings().all()
        return [request_from_row(row) for row in rows]
