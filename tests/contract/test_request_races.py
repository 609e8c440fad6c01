"""Exactly-once state changes under concurrency (architecture rule 4; checklist items 97, 8)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from backchannel.protocol.model import AuthRequest, RequestState
from backchannel.protocol.ports import Storage
from tests.contract import builders

pytestmark = pytest.mark.anyio
T0 = builders.T0


async def _approved(storage: Storage) -> AuthRequest:
    request = builders.request()
    await storage.requests.create_request(request, builders.event())
    approved = replace(request, state=RequestState.APPROVED, decided_at=T0, auth_time=T0)
    assert await storage.requests.transition(approved, RequestState.PENDING, builders.event())
    return approved


async def test_two_concurrent_decisions_exactly_one_wins(storage: Storage) -> None:
    request = builders.request()
    await storage.requests.create_request(request, builders.event())
    approve = replace(request, state=RequestState.APPROVED, decided_at=T0 + 1)
    deny = replace(request, state=RequestState.DENIED, decided_at=T0 + 1)
    results = await asyncio.gather(
        storage.requests.transition(approve, RequestState.PENDING, builders.event("approved")),
        storage.requests.transition(deny, RequestState.PENDING, builders.event("denied")),
    )
    assert sorted(results) == [False, True]
    winner = "approved" if results[0] else "denied"
    stored = await storage.requests.get_request(request.id_hash)
    assert stored is not None
    assert stored.state.value == winner
    kinds = [e.kind for e in await storage.requests.timeline(request.id_hash)]
    assert kinds == ["created", winner]


async def test_item_97_ten_concurrent_redeems_one_wins(storage: Storage) -> None:
    approved = await _approved(storage)
    redeemed = replace(approved, state=RequestState.REDEEMED)
    tokens = [builders.refresh_token() for _ in range(10)]
    results = await asyncio.gather(
        *(storage.requests.redeem(redeemed, builders.event("redeemed"), token) for token in tokens)
    )
    assert results.count(True) == 1
    winner = tokens[results.index(True)]
    assert await storage.tokens.get_refresh_token(winner.token_hash) == winner
    for loser in (t for t, won in zip(tokens, results, strict=True) if not won):
        assert await storage.tokens.get_refresh_token(loser.token_hash) is None
    stored = await storage.requests.get_request(approved.id_hash)
    assert stored is not None
    assert stored.state is RequestState.REDEEMED
    kinds = [e.kind for e in await storage.requests.timeline(approved.id_hash)]
    assert kinds.count("redeemed") == 1


async def test_item_97_redeem_after_redeem_is_false(storage: Storage) -> None:
    approved = await _approved(storage)
    redeemed = replace(approved, state=RequestState.REDEEMED)
    assert await storage.requests.redeem(redeemed, builders.event("redeemed"), None) is True
    token = builders.refresh_token()
    assert await storage.requests.redeem(redeemed, builders.event("redeemed"), token) is False
    assert await storage.tokens.get_refresh_token(token.token_hash) is None


async def test_pending_request_cannot_be_redeemed(storage: Storage) -> None:
    request = builders.request()
    await storage.requests.create_request(request, builders.event())
    redeemed = replace(request, state=RequestState.REDEEMED)
    assert await storage.requests.redeem(redeemed, builders.event("redeemed"), None) is False
    assert (await storage.requests.get_request(request.id_hash)) == request


async def test_overlapping_polls_exactly_one_records(storage: Storage) -> None:
    """Item 95: overlapping polls for one auth_req_id; only one is recorded."""
    request = builders.request()
    await storage.requests.create_request(request, builders.event())
    polls = [replace(request, last_polled_at=T0 + 1 + n / 10) for n in range(5)]
    results = await asyncio.gather(
        *(storage.requests.record_poll(poll, None, None) for poll in polls)
    )
    assert results.count(True) == 1


async def test_concurrent_sweeps_expire_each_request_once(storage: Storage) -> None:
    requests = [builders.request(expires_at=T0 + 1) for _ in range(6)]
    for request in requests:
        await storage.requests.create_request(request, builders.event())
    counts = await asyncio.gather(*(storage.requests.expire_overdue(T0 + 10) for _ in range(3)))
    assert sum(counts) == 6
    for request in requests:
        kinds = [e.kind for e in await storage.requests.timeline(request.id_hash)]
        assert kinds == ["created", "expired"]
