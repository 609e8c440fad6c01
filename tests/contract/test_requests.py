"""AuthRequestStore contract: create, read, timeline, listing, expiry."""

from __future__ import annotations

from dataclasses import replace

import pytest

from backchannel.protocol.model import RequestState
from backchannel.protocol.ports import DuplicateError, MissingError, Storage
from tests.contract import builders

pytestmark = pytest.mark.anyio
T0 = builders.T0


async def test_item_76_created_request_keeps_everything(storage: Storage) -> None:
    request = builders.request(client_notification_token="cnt-secret")
    await storage.requests.create_request(request, builders.event(origin="bc-authorize"))
    assert await storage.requests.get_request(request.id_hash) == request
    assert await storage.requests.timeline(request.id_hash) == [
        builders.event(origin="bc-authorize")
    ]


async def test_unknown_request_is_none(storage: Storage) -> None:
    assert await storage.requests.get_request("hmac:nope") is None
    assert await storage.requests.timeline("hmac:nope") == []


async def test_duplicate_request_is_refused(storage: Storage) -> None:
    request = builders.request()
    await storage.requests.create_request(request, builders.event())
    with pytest.raises(DuplicateError):
        await storage.requests.create_request(request, builders.event())


async def test_transition_writes_the_mutable_fields(storage: Storage) -> None:
    request = builders.request()
    await storage.requests.create_request(request, builders.event())
    approved = replace(
        request,
        state=RequestState.APPROVED,
        decided_at=T0 + 3,
        auth_time=T0 + 3,
        acr="urn:acr:2",
        amr=("hwk",),
    )
    ok = await storage.requests.transition(
        approved, RequestState.PENDING, builders.event("approved", T0 + 3)
    )
    assert ok is True
    assert await storage.requests.get_request(request.id_hash) == approved


async def test_transition_from_a_stale_state_writes_nothing(storage: Storage) -> None:
    request = builders.request()
    await storage.requests.create_request(request, builders.event())
    denied = replace(request, state=RequestState.DENIED, decided_at=T0 + 1)
    ok = await storage.requests.transition(denied, RequestState.APPROVED, builders.event("x"))
    assert ok is False
    assert await storage.requests.get_request(request.id_hash) == request
    assert [e.kind for e in await storage.requests.timeline(request.id_hash)] == ["created"]


async def test_transition_of_unknown_request_is_false(storage: Storage) -> None:
    ghost = builders.request(state=RequestState.APPROVED)
    assert not await storage.requests.transition(ghost, RequestState.PENDING, builders.event())


async def test_returned_request_is_a_copy(storage: Storage) -> None:
    request = builders.request()
    await storage.requests.create_request(request, builders.event())
    fetched = await storage.requests.get_request(request.id_hash)
    assert fetched is not None
    assert fetched.authorization_details is not None
    fetched.authorization_details[0]["amount"] = "1000000.00"
    fetched.state = RequestState.APPROVED
    assert await storage.requests.get_request(request.id_hash) == request


async def test_record_poll_is_conditional_on_the_previous_poll(storage: Storage) -> None:
    """Item 99: each poll is recorded; of two overlapping polls only one wins."""
    request = builders.request()
    await storage.requests.create_request(request, builders.event())
    first = replace(request, last_polled_at=T0 + 5.25)
    assert await storage.requests.record_poll(first, None, None) is True
    slowed = replace(request, last_polled_at=T0 + 6.5, interval=10)
    assert await storage.requests.record_poll(slowed, None, builders.event("slow_down")) is False
    assert await storage.requests.record_poll(slowed, T0 + 5.25, builders.event("slow_down"))
    stored = await storage.requests.get_request(request.id_hash)
    assert stored is not None
    assert (stored.last_polled_at, stored.interval) == (T0 + 6.5, 10)
    kinds = [e.kind for e in await storage.requests.timeline(request.id_hash)]
    assert kinds == ["created", "slow_down"]


async def test_record_poll_changes_only_poll_fields(storage: Storage) -> None:
    request = builders.request()
    await storage.requests.create_request(request, builders.event())
    sneaky = replace(request, last_polled_at=T0 + 1, state=RequestState.APPROVED)
    assert await storage.requests.record_poll(sneaky, None, None)
    stored = await storage.requests.get_request(request.id_hash)
    assert stored is not None
    assert stored.state is RequestState.PENDING


async def test_timeline_keeps_insertion_order(storage: Storage) -> None:
    request = builders.request()
    await storage.requests.create_request(request, builders.event("created", T0))
    await storage.requests.add_event(request.id_hash, builders.event("notified", T0 + 1, via="sse"))
    await storage.requests.add_event(request.id_hash, builders.event("viewed", T0 + 2))
    timeline = await storage.requests.timeline(request.id_hash)
    assert [(e.kind, e.at) for e in timeline] == [
        ("created", T0),
        ("notified", T0 + 1),
        ("viewed", T0 + 2),
    ]
    assert timeline[1].detail == {"via": "sse"}


async def test_event_for_unknown_request_raises(storage: Storage) -> None:
    with pytest.raises(MissingError):
        await storage.requests.add_event("hmac:nope", builders.event())


async def test_list_requests_newest_first_by_state(storage: Storage) -> None:
    states = [RequestState.PENDING, RequestState.DENIED, RequestState.PENDING]
    made = []
    for offset, state in enumerate(states):
        request = builders.request(created_at=T0 + offset, state=state)
        await storage.requests.create_request(request, builders.event())
        made.append(request)
    everything = await storage.requests.list_requests()
    assert [r.id_hash for r in everything] == [r.id_hash for r in reversed(made)]
    pending = await storage.requests.list_requests(RequestState.PENDING)
    assert [r.id_hash for r in pending] == [made[2].id_hash, made[0].id_hash]
    assert await storage.requests.list_requests(RequestState.REDEEMED) == []
    assert len(await storage.requests.list_requests(limit=2)) == 2


async def test_find_by_ref_matches_prefixes_only(storage: Storage) -> None:
    first = builders.request("hmac:abc111")
    second = builders.request("hmac:abc222", created_at=T0 + 1)
    other = builders.request("hmac:zzz_%")
    for request in (first, second, other):
        await storage.requests.create_request(request, builders.event())
    found = await storage.requests.find_by_ref("hmac:abc")
    assert [r.id_hash for r in found] == ["hmac:abc222", "hmac:abc111"]
    assert [r.id_hash for r in await storage.requests.find_by_ref("hmac:" + first.ref)] == [
        "hmac:abc111"
    ]
    assert await storage.requests.find_by_ref("abc") == []
    assert await storage.requests.find_by_ref("hmac:%") == []
    assert await storage.requests.find_by_ref("hmac:_bc") == []


async def test_expire_overdue_marks_pending_past_expiry(storage: Storage) -> None:
    overdue = [builders.request(expires_at=T0 + n) for n in (10, 20, 30)]
    fresh = builders.request(expires_at=T0 + 1000)
    approved = builders.request(expires_at=T0 + 5, state=RequestState.APPROVED)
    for request in [*overdue, fresh, approved]:
        await storage.requests.create_request(request, builders.event())
    assert await storage.requests.expire_overdue(T0 + 100, limit=2) == 2
    states = [await _state(storage, r.id_hash) for r in overdue]
    assert states == [RequestState.EXPIRED, RequestState.EXPIRED, RequestState.PENDING]
    assert await storage.requests.expire_overdue(T0 + 100) == 1
    assert await storage.requests.expire_overdue(T0 + 100) == 0
    assert await _state(storage, fresh.id_hash) is RequestState.PENDING
    assert await _state(storage, approved.id_hash) is RequestState.APPROVED
    timeline = await storage.requests.timeline(overdue[0].id_hash)
    assert [(e.kind, e.at) for e in timeline] == [("created", T0), ("expired", T0 + 100)]


async def test_expire_overdue_includes_the_expiry_instant(storage: Storage) -> None:
    request = builders.request(expires_at=T0 + 10)
    await storage.requests.create_request(request, builders.event())
    assert await storage.requests.expire_overdue(T0 + 9.999) == 0
    assert await storage.requests.expire_overdue(T0 + 10) == 1


async def test_count_pending_counts_live_pending_of_one_subject(storage: Storage) -> None:
    requests = [
        builders.request(),
        builders.request(),
        builders.request(expires_at=T0 + 1),
        builders.request(state=RequestState.APPROVED),
        builders.request(subject="user-2"),
    ]
    for request in requests:
        await storage.requests.create_request(request, builders.event())
    assert await storage.requests.count_pending("user-1", T0 + 10) == 2
    assert await storage.requests.count_pending("user-2", T0 + 10) == 1
    assert await storage.requests.count_pending("user-3", T0 + 10) == 0


async def _state(storage: Storage, id_hash: str) -> RequestState:
    request = await storage.requests.get_request(id_hash)
    assert request is not None
    return request.state
