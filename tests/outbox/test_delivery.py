"""Ping and push delivery through a real callback receiver (issue 5 items 1-3; checklist
items 110-127). The clock is fake; the HTTP calls are real, on loopback (dev mode)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace

import pytest

from backchannel.protocol import jose
from backchannel.protocol.ciba import delivery, outcome
from backchannel.protocol.model import AuthRequest, DeliveryMode, OutboxState, RequestState
from backchannel.protocol.provider import Provider
from tests.contract import builders
from tests.outbox.helpers import (
    NOTIFICATION_TOKEN,
    decided,
    instant_worker,
    notified_client,
    started,
)
from tests.support.clock import FakeClock
from tests.support.provider import make_provider
from tests.support.receiver import Receiver, Reply, running_receiver

pytestmark = pytest.mark.anyio


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


async def _provider(clock: FakeClock | None = None, **overrides: object) -> Provider:
    return await make_provider(clock=clock, dev_mode=True, **overrides)


async def _timeline_kinds(provider: Provider, auth_req_id: str) -> list[str]:
    events = await provider.storage.requests.timeline(provider.hasher.fast(auth_req_id))
    return [e.kind for e in events]


async def test_item_1_ping_posts_only_the_auth_req_id_with_the_bearer(receiver: Receiver) -> None:
    provider = await _provider()
    await notified_client(provider, DeliveryMode.PING, receiver.url("/cb"))
    auth_req_id = await decided(provider)
    assert await instant_worker(provider).run_once() == 1
    [call] = await receiver.wait_calls(1, path="/cb")
    assert call.method == "POST"
    assert call.headers["authorization"] == f"Bearer {NOTIFICATION_TOKEN}"
    assert call.headers["content-type"] == "application/json"
    assert call.json() == {"auth_req_id": auth_req_id}
    kinds = await _timeline_kinds(provider, auth_req_id)
    assert kinds[-3:] == ["approved", "delivery_attempt", "delivered"]


async def test_item_1_ping_also_follows_a_denial(receiver: Receiver) -> None:
    provider = await _provider()
    await notified_client(provider, DeliveryMode.PING, receiver.url("/cb"))
    auth_req_id = await decided(provider, approve=False)
    await instant_worker(provider).run_once()
    [call] = await receiver.wait_calls(1, path="/cb")
    assert call.json() == {"auth_req_id": auth_req_id}


async def test_notification_token_and_auth_req_id_are_not_stored_in_plaintext(
    receiver: Receiver,
) -> None:
    provider = await _provider()
    await notified_client(provider, DeliveryMode.PING, receiver.url("/cb"))
    auth_req_id, request = await started(provider)
    assert request.client_notification_token is None
    assert request.delivery_secret is not None
    assert NOTIFICATION_TOKEN not in request.delivery_secret
    assert auth_req_id not in request.delivery_secret
    await outcome.decide(provider, request, approve=True, channel="test")
    [entry] = await provider.storage.outbox.list_entries(request.id_hash)
    assert NOTIFICATION_TOKEN not in entry.payload and auth_req_id not in entry.payload


def _verify_push(provider: Provider, body: dict[str, object], auth_req_id: str) -> None:
    id_token = body["id_token"]
    assert isinstance(id_token, str)
    _, claims = jose.Verifier(provider.keys.jwks()).verify(id_token, ["RS256"])
    assert claims["urn:openid:params:jwt:claim:auth_req_id"] == auth_req_id
    assert claims["at_hash"] == jose.half_hash(str(body["access_token"]), "RS256")
    assert claims["urn:openid:params:jwt:claim:rt_hash"] == jose.half_hash(
        str(body["refresh_token"]), "RS256"
    )


async def test_item_2_push_delivers_the_token_response_with_verifiable_hashes(
    receiver: Receiver,
) -> None:
    provider = await _provider()
    await notified_client(provider, DeliveryMode.PUSH, receiver.url("/cb"))
    auth_req_id = await decided(provider)
    request = await provider.storage.requests.get_request(provider.hasher.fast(auth_req_id))
    assert request is not None and request.state is RequestState.REDEEMED
    await instant_worker(provider).run_once()
    [call] = await receiver.wait_calls(1, path="/cb")
    assert call.headers["authorization"] == f"Bearer {NOTIFICATION_TOKEN}"
    body = call.json()
    assert body["auth_req_id"] == auth_req_id
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    assert {"access_token", "refresh_token", "id_token"} <= body.keys()
    _verify_push(provider, body, auth_req_id)
    # The pushed refresh token is the stored one: it works at the token endpoint.
    stored = await provider.storage.tokens.get_refresh_token(
        provider.hasher.fast(body["refresh_token"])
    )
    assert stored is not None and stored.subject == "user-1"


async def test_item_2_push_tokens_are_sealed_at_rest(receiver: Receiver) -> None:
    provider = await _provider()
    await notified_client(provider, DeliveryMode.PUSH, receiver.url("/cb"))
    auth_req_id = await decided(provider)
    [entry] = await provider.storage.outbox.list_entries(provider.hasher.fast(auth_req_id))
    payload = delivery.open_payload(provider, entry)
    assert payload.body["access_token"] not in entry.payload
    assert hashlib.sha256(entry.payload.encode()).hexdigest()  # an opaque string
    assert entry.payload.startswith("v1.")


async def test_item_2_push_denial_is_an_access_denied_error(receiver: Receiver) -> None:
    provider = await _provider()
    await notified_client(provider, DeliveryMode.PUSH, receiver.url("/cb"))
    auth_req_id = await decided(provider, approve=False)
    await instant_worker(provider).run_once()
    [call] = await receiver.wait_calls(1, path="/cb")
    assert call.json() == {"error": "access_denied", "auth_req_id": auth_req_id}
    assert call.headers["authorization"] == f"Bearer {NOTIFICATION_TOKEN}"


async def test_item_2_push_expiry_is_an_expired_token_error_sent_after_expiry(
    receiver: Receiver,
) -> None:
    clock = FakeClock()
    provider = await _provider(clock)
    await notified_client(provider, DeliveryMode.PUSH, receiver.url("/cb"))
    auth_req_id, request = await started(provider)
    clock.advance(request.expires_at - clock.now() + 1)
    assert await delivery.sweep_expired(provider) == 1
    stored = await provider.storage.requests.get_request(request.id_hash)
    assert stored is not None and stored.state is RequestState.EXPIRED
    await instant_worker(provider).run_once()
    [call] = await receiver.wait_calls(1, path="/cb")
    assert call.json() == {"error": "expired_token", "auth_req_id": auth_req_id}


async def _approved_then_crashed(
    provider: Provider, clock: FakeClock, receiver: Receiver
) -> tuple[str, AuthRequest]:
    """A push request approved without its push (the server crashed in between)."""
    await notified_client(provider, DeliveryMode.PUSH, receiver.url("/cb"))
    auth_req_id, request = await started(provider)
    crashed = replace(request, state=RequestState.APPROVED, decided_at=clock.now())
    requests = provider.storage.requests
    assert await requests.transition(crashed, RequestState.PENDING, builders.event("approved"))
    return auth_req_id, request


async def test_tokens_of_an_approval_that_was_never_pushed_go_out_after_the_grace(
    receiver: Receiver,
) -> None:
    """A crash between the approval and its push leaves an approved push request; the
    sweeper pushes its tokens once the grace has passed, also behind many newer approved
    poll requests (which their clients fetch themselves)."""
    clock = FakeClock()
    provider = await _provider(clock)
    auth_req_id, request = await _approved_then_crashed(provider, clock, receiver)
    requests = provider.storage.requests
    for _ in range(101):
        newer = builders.request(created_at=clock.now() + 1, decided_at=clock.now() + 1)
        await requests.create_request(replace(newer, state=RequestState.APPROVED), builders.event())
    assert await delivery.push_unpushed(provider) == 0  # within the grace: maybe still going
    clock.advance(delivery.UNPUSHED_GRACE_SECONDS + 1)
    assert await delivery.push_unpushed(provider) == 1
    assert await delivery.push_unpushed(provider) == 0  # redeemed: never pushed twice
    await instant_worker(provider).run_once()
    [call] = await receiver.wait_calls(1, path="/cb")
    assert call.json()["auth_req_id"] == auth_req_id
    assert "id_token" in call.json() and "access_token" in call.json()
    stored = await requests.get_request(request.id_hash)
    assert stored is not None and stored.state is RequestState.REDEEMED


async def test_item_124_an_approval_never_pushed_before_expiry_expires_with_expired_token(
    receiver: Receiver,
) -> None:
    """An approved push request whose tokens did not go out before it expired (a crash,
    then a sweeper that came back too late) is not left approved for ever: the sweeper
    expires it and tells the client ``expired_token`` (checklist item 124), no tokens."""
    clock = FakeClock()
    provider = await _provider(clock)
    auth_req_id, request = await _approved_then_crashed(provider, clock, receiver)
    requests = provider.storage.requests
    clock.advance(request.expires_at - clock.now() + 1)
    assert await delivery.push_unpushed(provider) == 1
    stored = await requests.get_request(request.id_hash)
    assert stored is not None and stored.state is RequestState.EXPIRED
    assert await requests.list_unpushed(decided_before=clock.now()) == []
    assert await delivery.push_unpushed(provider) == 0
    await instant_worker(provider).run_once()
    [call] = await receiver.wait_calls(1, path="/cb")
    assert call.json() == {"error": "expired_token", "auth_req_id": auth_req_id}


async def test_item_3_500_twice_then_204_is_delivered_on_the_third_attempt(
    receiver: Receiver,
) -> None:
    clock = FakeClock()
    provider = await _provider(clock, outbox={"backoff_base_seconds": 2.0})
    receiver.on("/cb", Reply(500), Reply(500), Reply(204))
    await notified_client(provider, DeliveryMode.PING, receiver.url("/cb"))
    auth_req_id = await decided(provider)
    worker = instant_worker(provider)
    assert await worker.run_once() == 1
    assert await worker.run_once() == 0  # not due before the backoff (2 s * 0.5 jitter)
    clock.advance(1.0)
    assert await worker.run_once() == 1
    clock.advance(2.0)  # second retry: 4 s * 0.5
    assert await worker.run_once() == 1
    assert len(await receiver.wait_calls(3, path="/cb")) == 3
    [entry] = await provider.storage.outbox.list_entries(provider.hasher.fast(auth_req_id))
    assert (entry.state, entry.attempts) == (OutboxState.DELIVERED, 3)
    events = await provider.storage.requests.timeline(provider.hasher.fast(auth_req_id))
    attempts = [e.detail for e in events if e.kind == "delivery_attempt"]
    assert [(a["attempt"], a["status"]) for a in attempts] == [(1, 500), (2, 500), (3, 204)]
    assert events[-1].kind == "delivered" and events[-1].detail["attempts"] == 3


async def test_item_3_receiver_down_gives_up_after_four_attempts(receiver: Receiver) -> None:
    clock = FakeClock()
    provider = await _provider(clock, ciba={"default_expires_in": 600})
    # Nothing listens on this port: every attempt is a connection error.
    down = f"http://127.0.0.1:{_closed_port()}/cb"
    await notified_client(provider, DeliveryMode.PING, down)
    auth_req_id = await decided(provider)
    worker = instant_worker(provider)
    for _ in range(6):
        await worker.run_once()
        clock.advance(60)  # the request lives 600 s: attempts, not expiry, end it
    [entry] = await provider.storage.outbox.list_entries(provider.hasher.fast(auth_req_id))
    assert (entry.state, entry.attempts) == (OutboxState.FAILED, 4)
    events = await provider.storage.requests.timeline(provider.hasher.fast(auth_req_id))
    assert [e.kind for e in events].count("delivery_attempt") == 4
    assert events[-1].kind == "delivery_failed"
    assert events[-1].detail["reason"].startswith("gave up after 4 attempts")


async def test_item_3_expiry_ends_retries_before_the_attempts_run_out(receiver: Receiver) -> None:
    clock = FakeClock()
    provider = await _provider(
        clock,
        ciba={"default_expires_in": 60},
        outbox={"backoff_base_seconds": 40.0, "backoff_max_seconds": 100.0},
    )
    receiver.on("/cb", Reply(503))
    await notified_client(provider, DeliveryMode.PING, receiver.url("/cb"))
    auth_req_id = await decided(provider)
    worker = instant_worker(provider)
    await worker.run_once()  # retry in 20 s
    clock.advance(20)
    await worker.run_once()  # the next retry (40 s) would be after the expiry at 60 s
    [entry] = await provider.storage.outbox.list_entries(provider.hasher.fast(auth_req_id))
    assert (entry.state, entry.attempts) == (OutboxState.FAILED, 2)
    events = await provider.storage.requests.timeline(provider.hasher.fast(auth_req_id))
    assert events[-1].kind == "delivery_failed"
    assert events[-1].detail["reason"].startswith("request expired")


async def test_item_3_a_redirect_is_not_followed_and_is_final(receiver: Receiver) -> None:
    provider = await _provider()
    receiver.on("/cb", Reply.redirect(receiver.url("/elsewhere")))
    await notified_client(provider, DeliveryMode.PING, receiver.url("/cb"))
    auth_req_id = await decided(provider)
    await instant_worker(provider).run_once()
    assert len(receiver.calls_to("/cb")) == 1
    assert receiver.calls_to("/elsewhere") == []
    events = await provider.storage.requests.timeline(provider.hasher.fast(auth_req_id))
    assert events[-2].detail["status"] == 302
    assert events[-1].kind == "delivery_failed"
    assert "redirects are not followed" in events[-1].detail["reason"]


@pytest.mark.parametrize("status", [400, 401, 404])
async def test_policy_116_a_4xx_answer_is_final(receiver: Receiver, status: int) -> None:
    provider = await _provider()
    receiver.on("/cb", Reply(status))
    await notified_client(provider, DeliveryMode.PING, receiver.url("/cb"))
    auth_req_id = await decided(provider)
    worker = instant_worker(provider)
    await worker.run_once()
    assert await worker.run_once() == 0
    [entry] = await provider.storage.outbox.list_entries(provider.hasher.fast(auth_req_id))
    assert (entry.state, entry.attempts) == (OutboxState.FAILED, 1)


async def test_item_3_any_2xx_is_success(receiver: Receiver) -> None:
    provider = await _provider()
    receiver.on("/cb", Reply(202))
    await notified_client(provider, DeliveryMode.PING, receiver.url("/cb"))
    auth_req_id = await decided(provider)
    await instant_worker(provider).run_once()
    [entry] = await provider.storage.outbox.list_entries(provider.hasher.fast(auth_req_id))
    assert entry.state is OutboxState.DELIVERED


async def test_item_3_ssrf_refusal_at_delivery_is_final(receiver: Receiver) -> None:
    provider = await _provider()
    await notified_client(provider, DeliveryMode.PING, receiver.url("/cb"))
    auth_req_id = await decided(provider)
    provider.settings.dev_mode = False  # loopback is no longer allowed
    await instant_worker(provider).run_once()
    assert receiver.calls == []
    [entry] = await provider.storage.outbox.list_entries(provider.hasher.fast(auth_req_id))
    assert (entry.state, entry.attempts) == (OutboxState.FAILED, 1)


def _closed_port() -> int:
    from tests.support.http import free_port

    return free_port()
