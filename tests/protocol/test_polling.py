"""The poll decision for one CIBA grant request (CIBA §10.1, §11; items 91-106, P6, P7)."""

from __future__ import annotations

from dataclasses import replace

import anyio
import pytest

from backchannel.protocol.ciba import lifecycle, polling
from backchannel.protocol.errors import (
    AccessDenied,
    AuthorizationPending,
    ExpiredToken,
    InvalidGrant,
    SlowDown,
    UnauthorizedClient,
)
from backchannel.protocol.model import AuthRequest, DeliveryMode, RequestState
from backchannel.protocol.ports import Storage
from backchannel.protocol.provider import Provider
from tests.support.ciba import (
    RecordingTokens,
    add_client,
    add_user,
    approved_request,
    pending_request,
)
from tests.support.clock import FakeClock
from tests.support.fixtures import postgres_url, storage
from tests.support.provider import make_provider

pytestmark = pytest.mark.anyio
__all__ = ["postgres_url", "storage"]  # fixtures: memory, SQLite and PostgreSQL


async def stored(provider: Provider, request: AuthRequest) -> AuthRequest:
    latest = await provider.storage.requests.get_request(request.id_hash)
    assert latest is not None
    return latest


async def test_item_100_pending_request_answers_authorization_pending() -> None:
    provider = await make_provider()
    client = await add_client(provider)
    auth_req_id, request = await pending_request(provider, client)
    with pytest.raises(AuthorizationPending):
        await polling.poll(provider, client, auth_req_id)
    latest = await stored(provider, request)
    assert latest.last_polled_at == provider.clock.now()  # item 99: every poll is recorded
    assert latest.state is RequestState.PENDING
    timeline = await provider.storage.requests.timeline(request.id_hash)
    assert [e.kind for e in timeline] == ["created", "polled"]


async def test_item_101_slow_down_grows_the_interval_for_the_rest_of_the_request() -> None:
    clock = FakeClock()
    provider = await make_provider(clock=clock)
    client = await add_client(provider)
    auth_req_id, request = await pending_request(provider, client, interval=5)

    with pytest.raises(AuthorizationPending):
        await polling.poll(provider, client, auth_req_id)
    clock.advance(3)
    with pytest.raises(SlowDown, match="every 10 seconds"):
        await polling.poll(provider, client, auth_req_id)
    assert (await stored(provider, request)).interval == 10

    # The old interval is no longer enough: 6 s after the last poll is too fast now.
    clock.advance(6)
    with pytest.raises(SlowDown, match="every 15 seconds"):
        await polling.poll(provider, client, auth_req_id)

    # Respecting the grown interval works, and the interval stays grown afterwards.
    clock.advance(15)
    with pytest.raises(AuthorizationPending):
        await polling.poll(provider, client, auth_req_id)
    clock.advance(14)
    with pytest.raises(SlowDown, match="every 20 seconds"):
        await polling.poll(provider, client, auth_req_id)
    latest = await stored(provider, request)
    assert latest.interval == 20
    kinds = [e.kind for e in await provider.storage.requests.timeline(request.id_hash)]
    assert kinds == ["created", "polled", "slow_down", "slow_down", "polled", "slow_down"]


async def test_p7_slow_down_increment_comes_from_settings() -> None:
    clock = FakeClock()
    provider = await make_provider(clock=clock, ciba={"slow_down_increment": 7})
    client = await add_client(provider)
    auth_req_id, request = await pending_request(provider, client, interval=5)
    with pytest.raises(AuthorizationPending):
        await polling.poll(provider, client, auth_req_id)
    clock.advance(1)
    with pytest.raises(SlowDown):
        await polling.poll(provider, client, auth_req_id)
    assert (await stored(provider, request)).interval == 12


async def test_polling_exactly_at_the_interval_is_not_too_fast() -> None:
    clock = FakeClock()
    provider = await make_provider(clock=clock)
    client = await add_client(provider)
    auth_req_id, request = await pending_request(provider, client, interval=5)
    for _ in range(3):
        with pytest.raises(AuthorizationPending):
            await polling.poll(provider, client, auth_req_id)
        clock.advance(5)
    assert (await stored(provider, request)).interval == 5


async def test_item_95_overlapping_polls_answer_pending_once(storage: Storage) -> None:
    """Concurrent polls at the same moment: one is recorded, every other one is too fast."""
    provider = await make_provider(storage=storage)
    client = await add_client(provider)
    auth_req_id, request = await pending_request(provider, client, interval=5)
    outcomes: list[str] = []

    async def one_poll() -> None:
        try:
            await polling.poll(provider, client, auth_req_id)
        except (AuthorizationPending, SlowDown) as error:
            outcomes.append(error.error)

    async with anyio.create_task_group() as group:
        for _ in range(6):
            group.start_soon(one_poll)
    assert sorted(outcomes) == ["authorization_pending"] + ["slow_down"] * 5
    assert (await stored(provider, request)).state is RequestState.PENDING


async def test_item_102_expired_request_answers_expired_token() -> None:
    clock = FakeClock()
    provider = await make_provider(clock=clock)
    client = await add_client(provider)
    auth_req_id, request = await pending_request(provider, client, expires_in=60)
    clock.advance(60)
    with pytest.raises(ExpiredToken):
        await polling.poll(provider, client, auth_req_id)
    assert (await stored(provider, request)).state is RequestState.EXPIRED
    with pytest.raises(ExpiredToken):
        await polling.poll(provider, client, auth_req_id)


async def test_approved_but_overdue_request_is_expired_not_redeemed() -> None:
    clock = FakeClock()
    provider = await make_provider(clock=clock)
    client = await add_client(provider)
    await add_user(provider)
    auth_req_id, request = await approved_request(provider, client)
    clock.advance(120)
    with pytest.raises(ExpiredToken):
        await polling.poll(provider, client, auth_req_id)
    assert (await stored(provider, request)).state is RequestState.EXPIRED


async def test_item_103_denied_request_answers_access_denied_with_400() -> None:
    provider = await make_provider()
    client = await add_client(provider)
    auth_req_id, request = await pending_request(provider, client)
    await lifecycle.deny(provider, request)
    with pytest.raises(AccessDenied) as caught:
        await polling.poll(provider, client, auth_req_id)
    assert caught.value.http_status == 400


async def test_item_104_unknown_and_foreign_ids_are_indistinguishable() -> None:
    provider = await make_provider()
    owner = await add_client(provider, "rp-1")
    other = await add_client(provider, "rp-2")
    auth_req_id, request = await pending_request(provider, owner)
    with pytest.raises(InvalidGrant) as foreign:
        await polling.poll(provider, other, auth_req_id)
    with pytest.raises(InvalidGrant) as unknown:
        await polling.poll(provider, other, "no-such-auth-req-id")
    assert foreign.value.description == unknown.value.description
    # The foreign poll left no trace on the owner's request.
    assert (await stored(provider, request)).last_polled_at is None


async def test_item_106_push_client_is_unauthorized_even_for_unknown_ids() -> None:
    provider = await make_provider()
    push = await add_client(provider, "rp-push", mode=DeliveryMode.PUSH)
    auth_req_id, _ = await pending_request(provider, push)
    for candidate in (auth_req_id, "no-such-auth-req-id"):
        with pytest.raises(UnauthorizedClient):
            await polling.poll(provider, push, candidate)


async def test_item_92_ping_client_may_poll() -> None:
    provider = await make_provider()
    ping = await add_client(provider, "rp-ping", mode=DeliveryMode.PING)
    await add_user(provider)
    auth_req_id, request = await pending_request(provider, ping)
    with pytest.raises(AuthorizationPending):
        await polling.poll(provider, ping, auth_req_id)
    await lifecycle.approve(provider, await stored(provider, request), acr=None, amr=())
    tokens = await polling.poll(provider, ping, auth_req_id)
    assert tokens.access_token


async def test_item_97_approved_request_redeems_once() -> None:
    provider = await make_provider()
    client = await add_client(provider)
    await add_user(provider)
    auth_req_id, request = await approved_request(provider, client)
    tokens = await polling.poll(provider, client, auth_req_id)
    assert tokens.refresh_token is not None
    assert tokens.scope == ("openid", "profile", "email")
    assert (await stored(provider, request)).state is RequestState.REDEEMED
    record = await provider.storage.tokens.get_refresh_token(
        provider.hasher.fast(tokens.refresh_token)
    )
    assert record is not None and record.client_id == "rp-1"
    with pytest.raises(InvalidGrant):
        await polling.poll(provider, client, auth_req_id)


async def test_refresh_tokens_can_be_switched_off() -> None:
    provider = await make_provider(tokens={"issue_refresh_tokens": False})
    client = await add_client(provider)
    await add_user(provider)
    auth_req_id, _ = await approved_request(provider, client)
    assert (await polling.poll(provider, client, auth_req_id)).refresh_token is None


async def test_lost_redeem_race_leaves_this_attempts_tokens_unusable() -> None:
    """A redeem that loses to a concurrent one stores no refresh token and revokes its
    access token's jti."""
    base = await make_provider()
    recording = RecordingTokens()
    provider = replace(base, random=recording)
    client = await add_client(provider)
    await add_user(provider)
    _, approved = await approved_request(provider, client)
    assert await lifecycle.redeem(provider, approved, None)  # the other process won
    recording.issued.clear()

    with pytest.raises(InvalidGrant):
        await polling.redeem_approved(provider, client, approved)
    revoked = [
        value
        for value in recording.issued
        if await provider.storage.tokens.is_access_token_revoked(value)
    ]
    assert len(revoked) == 1  # the jti of the access token minted in this attempt
    for value in recording.issued:
        assert await provider.storage.tokens.get_refresh_token(provider.hasher.fast(value)) is None
