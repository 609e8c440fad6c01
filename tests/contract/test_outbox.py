"""The outbox contract (issue 5 item 3), on memory, SQLite and PostgreSQL: deliveries are
written with the state change that causes them, and claims are exclusive until their lease
ends."""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Any

import anyio
import pytest

from backchannel.protocol.model import (
    DeliveryMode,
    OutboxEntry,
    OutboxState,
    RequestState,
)
from backchannel.protocol.ports import DuplicateError, Storage
from tests.contract import builders
from tests.contract.builders import T0

pytestmark = pytest.mark.anyio


def entry(id_hash: str | None = None, **overrides: Any) -> OutboxEntry:
    values: dict[str, Any] = {
        "id": secrets.token_hex(8),
        "kind": "ping",
        "url": "https://rp.example.test/cb",
        "payload": "v1.sealed",
        "created_at": T0,
        "updated_at": T0,
        "next_attempt_at": T0,
        "id_hash": id_hash,
        "client_id": "client-1",
        "deliver_until": T0 + 120,
    }
    values.update(overrides)
    return OutboxEntry(**values)


async def _pending(storage: Storage, **overrides: Any) -> Any:
    request = builders.request(**overrides)
    await storage.requests.create_request(request, builders.event())
    return request


async def test_item_3_transition_writes_its_deliveries(storage: Storage) -> None:
    request = await _pending(storage)
    ping = entry(request.id_hash)
    approved = replace(request, state=RequestState.APPROVED, decided_at=T0 + 1)
    assert await storage.requests.transition(
        approved, RequestState.PENDING, builders.event("approved"), [ping]
    )
    assert await storage.outbox.list_entries(request.id_hash) == [ping]
    assert await storage.outbox.get_entry(ping.id) == ping


async def test_item_3_a_transition_that_loses_its_race_writes_no_delivery(
    storage: Storage,
) -> None:
    request = await _pending(storage)
    approved = replace(request, state=RequestState.APPROVED)
    denied = replace(request, state=RequestState.DENIED)
    assert await storage.requests.transition(
        approved, RequestState.PENDING, builders.event("approved"), [entry(request.id_hash)]
    )
    late = entry(request.id_hash, kind="push_error")
    assert not await storage.requests.transition(
        denied, RequestState.PENDING, builders.event("denied"), [late]
    )
    assert [e.kind for e in await storage.outbox.list_entries(request.id_hash)] == ["ping"]
    assert await storage.outbox.get_entry(late.id) is None


async def test_item_3_redeem_writes_refresh_token_and_push_together(storage: Storage) -> None:
    request = await _pending(storage, delivery_mode=DeliveryMode.PUSH)
    approved = replace(request, state=RequestState.APPROVED)
    assert await storage.requests.transition(
        approved, RequestState.PENDING, builders.event("approved")
    )
    token = builders.refresh_token()
    push = entry(request.id_hash, kind="push")
    assert await storage.requests.redeem(approved, builders.event("redeemed"), token, [push])
    assert await storage.tokens.get_refresh_token(token.token_hash) is not None
    assert await storage.outbox.list_entries(request.id_hash) == [push]
    again = entry(request.id_hash, kind="push")
    assert not await storage.requests.redeem(approved, builders.event("redeemed"), None, [again])
    assert await storage.outbox.get_entry(again.id) is None


async def test_issue_6_item_2_create_request_writes_its_device_notices(storage: Storage) -> None:
    request = builders.request()
    notice = entry(request.id_hash, kind="webpush", url="https://push.example.test/s/1")
    await storage.requests.create_request(request, builders.event(), [notice])
    assert await storage.outbox.list_entries(request.id_hash) == [notice]
    [claimed] = await storage.outbox.claim_due(T0, "w1", 30, 10)
    assert claimed.id == notice.id and claimed.kind == "webpush"


async def test_issue_6_item_2_a_duplicate_request_writes_no_notice(storage: Storage) -> None:
    request = await _pending(storage)
    late = entry(request.id_hash, kind="webpush")
    with pytest.raises(DuplicateError):
        await storage.requests.create_request(request, builders.event(), [late])
    assert await storage.outbox.get_entry(late.id) is None
    assert await storage.outbox.list_entries(request.id_hash) == []


async def test_item_3_claim_leases_due_entries_only(storage: Storage) -> None:
    due, later = entry(), entry(next_attempt_at=T0 + 60)
    await storage.outbox.enqueue([due, later])
    claimed = await storage.outbox.claim_due(T0, "w1", 30, 10)
    assert [e.id for e in claimed] == [due.id]
    assert claimed[0].lease_owner == "w1" and claimed[0].lease_until == T0 + 30
    assert await storage.outbox.claim_due(T0 + 1, "w1", 30, 10) == []
    # Past the lease, the unfinished entry is due again, together with the later one.
    again = await storage.outbox.claim_due(T0 + 61, "w1", 30, 10)
    assert [e.id for e in again] == [due.id, later.id]


async def test_item_3_two_concurrent_claimers_never_get_the_same_entry(
    storage: Storage,
) -> None:
    entries = [entry() for _ in range(40)]
    await storage.outbox.enqueue(entries)
    results: dict[str, list[str]] = {}

    async def claim(owner: str) -> None:
        got: list[str] = []
        for _ in range(10):
            got += [e.id for e in await storage.outbox.claim_due(T0, owner, 30, 3)]
        results[owner] = got

    async with anyio.create_task_group() as group:
        for owner in ("a", "b", "c"):
            group.start_soon(claim, owner)
    claimed = [i for ids in results.values() for i in ids]
    assert len(claimed) == len(set(claimed))
    assert set(claimed) <= {e.id for e in entries}


async def test_item_3_an_expired_lease_can_be_claimed_again(storage: Storage) -> None:
    await storage.outbox.enqueue([entry()])
    # On SQLite the worker lease is held by w1 until it expires; afterwards w2 may claim.
    assert len(await storage.outbox.claim_due(T0, "w1", 30, 10)) == 1
    assert await storage.outbox.claim_due(T0 + 10, "w2", 30, 10) == []
    reclaimed = await storage.outbox.claim_due(T0 + 31, "w2", 30, 10)
    assert [e.lease_owner for e in reclaimed] == ["w2"]
    # The former owner cannot conclude an attempt any more.
    assert not await storage.outbox.complete(reclaimed[0].id, "w1", T0 + 32)
    assert await storage.outbox.complete(reclaimed[0].id, "w2", T0 + 32)


async def test_item_3_outcomes_count_attempts_and_write_the_timeline(storage: Storage) -> None:
    request = await _pending(storage)
    first, second, third = entry(request.id_hash), entry(request.id_hash), entry(request.id_hash)
    await storage.outbox.enqueue([first, second, third])
    await storage.outbox.claim_due(T0, "w", 30, 10)
    attempt = builders.event("delivery_attempt", at=T0 + 1, attempt=1)
    assert await storage.outbox.reschedule(first.id, "w", T0 + 1, T0 + 5, "HTTP 500", [attempt])
    assert await storage.outbox.complete(second.id, "w", T0 + 1, [builders.event("delivered")])
    assert await storage.outbox.fail(third.id, "w", T0 + 1, "HTTP 400")
    rescheduled = await storage.outbox.get_entry(first.id)
    assert rescheduled is not None
    assert (rescheduled.state, rescheduled.attempts, rescheduled.next_attempt_at) == (
        OutboxState.PENDING,
        1,
        T0 + 5,
    )
    assert (rescheduled.lease_owner, rescheduled.last_error) == (None, "HTTP 500")
    delivered, failed = (
        await storage.outbox.get_entry(second.id),
        await storage.outbox.get_entry(third.id),
    )
    assert delivered is not None and delivered.state is OutboxState.DELIVERED
    assert failed is not None and (failed.state, failed.last_error) == (
        OutboxState.FAILED,
        "HTTP 400",
    )
    kinds = [e.kind for e in await storage.requests.timeline(request.id_hash)]
    assert kinds == ["created", "delivery_attempt", "delivered"]
    # A finished entry is never claimed again, and cannot be finished twice.
    assert [e.id for e in await storage.outbox.claim_due(T0 + 6, "w", 30, 10)] == [first.id]
    assert not await storage.outbox.complete(second.id, "w", T0 + 7)


async def test_expire_overdue_by_mode_and_list_overdue(storage: Storage) -> None:
    poll = await _pending(storage, expires_at=T0 + 10)
    push = await _pending(storage, expires_at=T0 + 10, delivery_mode=DeliveryMode.PUSH)
    await _pending(storage, expires_at=T0 + 500, delivery_mode=DeliveryMode.PUSH)
    overdue = await storage.requests.list_overdue(T0 + 20, DeliveryMode.PUSH)
    assert [r.id_hash for r in overdue] == [push.id_hash]
    modes = (DeliveryMode.POLL, DeliveryMode.PING)
    assert await storage.requests.expire_overdue(T0 + 20, modes=modes) == 1
    stored_poll, stored_push = (
        await storage.requests.get_request(poll.id_hash),
        await storage.requests.get_request(push.id_hash),
    )
    assert stored_poll is not None and stored_poll.state is RequestState.EXPIRED
    assert stored_push is not None and stored_push.state is RequestState.PENDING


async def test_delivery_secret_is_stored(storage: Storage) -> None:
    request = await _pending(storage, delivery_mode=DeliveryMode.PING, delivery_secret="v1.x")
    stored = await storage.requests.get_request(request.id_hash)
    assert stored is not None and stored.delivery_secret == "v1.x"


async def test_list_unpushed_finds_only_approved_push_requests_past_the_grace(
    storage: Storage,
) -> None:
    """The sweeper's retry of push tokens lost in a crash between approval and push
    (checklist items 120-121: push delivers the tokens; item 124: an expired one gets
    ``expired_token`` instead): approved push requests decided before the cut-off, expired
    or not, oldest decision first."""

    async def approved(decided_at: float | None, **overrides: Any) -> str:
        request = await _pending(storage, **overrides)
        done = replace(request, state=RequestState.APPROVED, decided_at=decided_at)
        assert await storage.requests.transition(
            done, RequestState.PENDING, builders.event("approved")
        )
        return str(request.id_hash)

    push = DeliveryMode.PUSH
    late = await approved(T0 + 30, delivery_mode=push)
    early = await approved(T0 + 10, delivery_mode=push)
    unknown = await approved(None, delivery_mode=push)
    await approved(T0 + 10)  # poll: the client polls for its tokens
    await approved(T0 + 55, delivery_mode=push)  # still within the grace
    expired = await approved(T0 + 5, delivery_mode=push, expires_at=T0 + 59)  # expired by now
    await _pending(storage, delivery_mode=push)
    redeemed = await approved(T0 + 10, delivery_mode=push)
    stored = await storage.requests.get_request(redeemed)
    assert stored is not None
    assert await storage.requests.redeem(stored, builders.event("redeemed"), None)

    found = await storage.requests.list_unpushed(decided_before=T0 + 50)
    assert [r.id_hash for r in found] == [unknown, expired, early, late]
    assert found[2].state is RequestState.APPROVED and found[2].delivery_mode is push
    limited = await storage.requests.list_unpushed(decided_before=T0 + 50, limit=2)
    assert [r.id_hash for r in limited] == [unknown, expired]
