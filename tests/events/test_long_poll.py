"""Long polling at the token endpoint (CIBA §10.1; items 93, 95, 99, 101; issue 5 item 5).

The hold is real time (it waits for a wake-up) while lifetimes are on the fake clock. Holds
here end within a fraction of a second: by a publish, or by a short remaining lifetime.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import anyio
import pytest

from backchannel.protocol.ciba import long_poll, outcome, polling
from backchannel.protocol.errors import AccessDenied, AuthorizationPending, SlowDown
from backchannel.protocol.events import LocalEventBus, request_topic
from backchannel.protocol.model import AuthRequest, Client, DeliveryMode, TokenSet
from backchannel.protocol.ports import Storage
from backchannel.protocol.provider import Provider
from tests.support.ciba import add_client, add_user, pending_request
from tests.support.clock import FakeClock
from tests.support.provider import make_provider

pytestmark = pytest.mark.anyio
Outcome = TokenSet | Exception


async def long_polling(
    seconds: int = 30, storage: Storage | None = None, mode: DeliveryMode = DeliveryMode.POLL
) -> tuple[Provider, FakeClock, Client]:
    clock = FakeClock()
    provider = await make_provider(storage, clock, ciba={"long_poll_seconds": seconds})
    client = await add_client(provider, mode=mode)
    await add_user(provider)
    return provider, clock, client


def held(provider: Provider) -> int:
    assert isinstance(provider.events, LocalEventBus)
    return provider.events.waiting_on("request:")


async def until_held(provider: Provider, count: int = 1) -> None:
    with anyio.fail_after(1):
        while held(provider) < count:
            await anyio.sleep(0.002)


async def outcome_of(call: Callable[[], Awaitable[TokenSet]]) -> Outcome:
    try:
        return await call()
    except Exception as error:
        return error


async def stored(provider: Provider, request: AuthRequest) -> AuthRequest:
    latest = await provider.storage.requests.get_request(request.id_hash)
    assert latest is not None
    return latest


async def poll_while(
    provider: Provider, client: Client, auth_req_id: str, during: Callable[[], Awaitable[None]]
) -> tuple[Outcome, float]:
    """Start a poll, run ``during`` once it is held; the poll's outcome and real duration."""
    results: list[Outcome] = []
    started = time.monotonic()

    async def poll() -> None:
        results.append(await outcome_of(lambda: polling.poll(provider, client, auth_req_id)))

    async with anyio.create_task_group() as group:
        group.start_soon(poll)
        await until_held(provider)
        await during()
    return results[0], time.monotonic() - started


async def test_item_93_held_poll_is_answered_with_tokens_when_the_user_approves() -> None:
    provider, _, client = await long_polling(seconds=5)
    auth_req_id, request = await pending_request(provider, client)

    async def approve() -> None:
        await outcome.decide(provider, request, approve=True, channel="test")

    result, elapsed = await poll_while(provider, client, auth_req_id, approve)
    assert isinstance(result, TokenSet), result
    assert result.id_token
    assert elapsed < 1.0  # the 5 s hold was ended by the approval's publish
    assert held(provider) == 0


async def test_item_93_held_poll_is_answered_access_denied_when_the_user_denies() -> None:
    provider, _, client = await long_polling(seconds=5)
    auth_req_id, request = await pending_request(provider, client)

    async def deny() -> None:
        await outcome.decide(provider, request, approve=False, channel="test")

    result, elapsed = await poll_while(provider, client, auth_req_id, deny)
    assert isinstance(result, AccessDenied)
    assert elapsed < 1.0


async def test_item_92_ping_client_polls_are_held_too() -> None:
    provider, _, client = await long_polling(seconds=5, mode=DeliveryMode.PING)
    auth_req_id, request = await pending_request(provider, client)

    async def approve() -> None:
        await outcome.decide(provider, request, approve=True, channel="test")

    result, _ = await poll_while(provider, client, auth_req_id, approve)
    assert isinstance(result, TokenSet), result


async def test_item_93_hold_ends_with_authorization_pending_and_never_outlives_the_request() -> (
    None
):
    """long_poll_seconds = 30 but 1.3 s of lifetime left: held ~0.3 s (lifetime - 1 s)."""
    provider, clock, client = await long_polling(seconds=30)
    auth_req_id, request = await pending_request(provider, client, expires_in=60)
    clock.advance(60 - 1.3)
    started = time.monotonic()
    with pytest.raises(AuthorizationPending):
        await polling.poll(provider, client, auth_req_id)
    elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 0.9
    timeline = await provider.storage.requests.timeline(request.id_hash)
    assert [e.kind for e in timeline] == ["created", "polled"]  # item 99
    assert timeline[-1].detail["long_poll_seconds"] == pytest.approx(0.3)


async def test_hold_seconds_is_the_smallest_of_setting_and_lifetime_minus_a_second() -> None:
    provider, clock, client = await long_polling(seconds=10)
    _, request = await pending_request(provider, client, expires_in=60)
    assert long_poll.hold_seconds(provider, request) == 10
    clock.advance(55)
    assert long_poll.hold_seconds(provider, request) == pytest.approx(4)
    clock.advance(4.5)
    assert long_poll.hold_seconds(provider, request) == 0  # never negative: answer at once


async def test_off_by_default_the_poll_is_answered_at_once() -> None:
    provider = await make_provider()
    client = await add_client(provider)
    auth_req_id, request = await pending_request(provider, client)
    assert long_poll.hold_seconds(provider, request) == 0
    with pytest.raises(AuthorizationPending):
        await polling.poll(provider, client, auth_req_id)
    assert held(provider) == 0


async def test_item_99_a_held_poll_does_not_make_the_next_poll_too_fast(storage: Storage) -> None:
    """The interval counts from when the held poll was answered, not when it arrived."""
    provider, clock, client = await long_polling(seconds=30, storage=storage)
    auth_req_id, request = await pending_request(provider, client, interval=5)

    async def hold_for_20_seconds_then_wake() -> None:
        clock.advance(20)  # what a 20 s hold looks like on the clock
        await provider.events.publish(request_topic(request.id_hash))

    result, _ = await poll_while(provider, client, auth_req_id, hold_for_20_seconds_then_wake)
    assert isinstance(result, AuthorizationPending)
    assert (await stored(provider, request)).last_polled_at == clock.now()
    clock.advance(5)  # one interval after the answer

    async def wake() -> None:
        await provider.events.publish(request_topic(request.id_hash))

    second, _ = await poll_while(provider, client, auth_req_id, wake)
    assert isinstance(second, AuthorizationPending), second
    assert (await stored(provider, request)).interval == 5


async def test_item_95_an_overlapping_poll_during_a_hold_gets_slow_down(storage: Storage) -> None:
    provider, clock, client = await long_polling(seconds=30, storage=storage)
    auth_req_id, request = await pending_request(provider, client, interval=5)
    overlapping: list[Outcome] = []

    async def poll_again_then_wake() -> None:
        clock.advance(10)  # even well past the interval, the first poll is still held
        overlapping.append(await outcome_of(lambda: polling.poll(provider, client, auth_req_id)))
        await provider.events.publish(request_topic(request.id_hash))

    first, _ = await poll_while(provider, client, auth_req_id, poll_again_then_wake)
    assert isinstance(overlapping[0], SlowDown)
    assert isinstance(first, AuthorizationPending)
    latest = await stored(provider, request)
    assert latest.interval == 10  # item 101: the slow_down's longer interval is kept
    kinds = [e.kind for e in await provider.storage.requests.timeline(request.id_hash)]
    assert kinds == ["created", "polled", "slow_down"]


async def test_item_101_a_fast_poll_is_refused_before_any_hold() -> None:
    provider, clock, client = await long_polling(seconds=30)
    auth_req_id, _ = await pending_request(provider, client, expires_in=60, interval=5)
    clock.advance(60 - 1.1)  # a 0.1 s hold
    with pytest.raises(AuthorizationPending):
        await polling.poll(provider, client, auth_req_id)
    clock.advance(0.5)
    with pytest.raises(SlowDown):
        await polling.poll(provider, client, auth_req_id)
    assert held(provider) == 0
