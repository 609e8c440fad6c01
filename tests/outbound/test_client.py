"""The outbound client against real loopback servers (items 113, 114, 200): what it sends,
what it refuses to do, and what it never reads. Only loopback traffic: names that resolve
to internal ranges come from a ``StaticResolver`` and are refused before any connection."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from backchannel.outbound import (
    OutboundClient,
    OutboundError,
    OutboundRefused,
    StaticResolver,
)
from backchannel.settings import Settings
from tests.support.http import free_port
from tests.support.provider import make_settings
from tests.support.receiver import Receiver, Reply, running_receiver

pytestmark = pytest.mark.anyio
TOKEN = "ping-token-0123456789"


def dev_settings(**overrides: Any) -> Settings:
    return make_settings(dev_mode=True, **overrides)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as started:
        yield started


@pytest.fixture
async def client() -> AsyncIterator[OutboundClient]:
    outbound = OutboundClient(dev_settings())
    yield outbound
    await outbound.close()


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A bare loopback TCP listener: ``accept`` tells whether anyone connected."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    yield sock
    sock.close()


def connections(listener: socket.socket) -> int:
    count = 0
    while True:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


async def test_post_json_sends_bearer_and_exact_json(
    receiver: Receiver, client: OutboundClient
) -> None:
    receiver.on("/cb", Reply(204, headers={"x-seen": "yes"}))
    response = await client.post_json(receiver.url("/cb"), {"auth_req_id": "a-1"}, bearer=TOKEN)
    assert (response.status, response.is_success, response.body) == (204, True, b"")
    assert response.headers["x-seen"] == "yes"
    assert 0 <= response.elapsed < 5
    [call] = receiver.calls
    assert (call.method, call.path) == ("POST", "/cb")
    assert call.headers["authorization"] == f"Bearer {TOKEN}"
    assert call.headers["content-type"] == "application/json"
    assert call.json() == {"auth_req_id": "a-1"}


async def test_no_authorization_header_without_bearer(
    receiver: Receiver, client: OutboundClient
) -> None:
    await client.post_json(receiver.url("/cb"), {"x": 1})
    assert "authorization" not in receiver.calls[0].headers


async def test_item_114_redirect_is_returned_not_followed(
    receiver: Receiver, client: OutboundClient
) -> None:
    receiver.on("/cb", Reply.redirect(receiver.url("/elsewhere")))
    response = await client.post_json(receiver.url("/cb"), {"auth_req_id": "a"}, bearer=TOKEN)
    assert response.status == 302
    assert not response.is_success
    assert response.headers["location"] == receiver.url("/elsewhere")
    assert receiver.calls_to("/elsewhere") == []
    assert len(receiver.calls) == 1


async def test_get_json_does_not_follow_redirects_either(
    receiver: Receiver, client: OutboundClient
) -> None:
    receiver.on("/jwks", Reply.redirect(receiver.url("/other"), status=307))
    with pytest.raises(OutboundError, match="answered 307"):
        await client.get_json(receiver.url("/jwks"))
    assert receiver.calls_to("/other") == []


async def test_item_200_response_body_is_capped(receiver: Receiver) -> None:
    outbound = OutboundClient(dev_settings(outbound={"max_response_bytes": 1024}))
    receiver.on("/big", Reply(200, b"x" * 200_000))
    try:
        response = await outbound.post_json(receiver.url("/big"), {})
        assert response.truncated
        assert len(response.body) == 1024
        with pytest.raises(OutboundError, match="response too large"):
            await outbound.get_json(receiver.url("/big"))
    finally:
        await outbound.close()


async def test_small_body_is_read_whole(receiver: Receiver, client: OutboundClient) -> None:
    receiver.on("/cb", Reply(200, b"y" * 1000))
    response = await client.post_json(receiver.url("/cb"), {})
    assert (response.body, response.truncated) == (b"y" * 1000, False)


async def test_item_200_timeout_and_no_token_in_the_message(
    receiver: Receiver, client: OutboundClient
) -> None:
    receiver.on("/slow", Reply(204, delay=3.0))
    started = time.monotonic()
    with pytest.raises(OutboundError) as raised:
        await client.post_json(receiver.url("/slow"), {}, bearer=TOKEN, timeout=0.3)
    assert time.monotonic() - started < 2.0
    assert "no response within 0.3 s" in str(raised.value)
    assert TOKEN not in str(raised.value)
    assert raised.value.retryable
    assert len(receiver.calls) == 1  # it did arrive; the answer came too late


async def test_connection_refused_is_a_retryable_error(client: OutboundClient) -> None:
    with pytest.raises(OutboundError) as raised:
        await client.post_json(f"http://127.0.0.1:{free_port()}/cb", {}, bearer=TOKEN)
    assert raised.value.retryable
    assert not isinstance(raised.value, OutboundRefused)
    assert TOKEN not in str(raised.value)


async def test_item_113_plain_http_is_refused_outside_dev_mode(receiver: Receiver) -> None:
    outbound = OutboundClient(make_settings())
    with pytest.raises(OutboundRefused, match="must be https"):
        await outbound.post_json(receiver.url("/cb"), {})
    assert receiver.calls == []


async def test_item_200_loopback_is_refused_outside_dev_mode(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    resolver = StaticResolver({"local.example.test": ["127.0.0.1"]})
    outbound = OutboundClient(make_settings(), resolver)
    with pytest.raises(OutboundRefused, match=r"loopback address 127\.0\.0\.1"):
        await outbound.post_json(f"https://local.example.test:{port}/cb", {})
    with pytest.raises(OutboundRefused, match="loopback"):
        await outbound.post_json(f"https://127.0.0.1:{port}/cb", {})
    assert connections(listener) == 0


@pytest.mark.parametrize(
    ("address", "category"),
    [("10.0.0.1", "private"), ("169.254.169.254", "cloud metadata"), ("fd00::1", "private")],
)
async def test_item_200_names_resolving_inside_are_refused_at_delivery(
    address: str, category: str
) -> None:
    resolver = StaticResolver({"hook.example.test": [address]})
    outbound = OutboundClient(make_settings(), resolver)
    with pytest.raises(OutboundRefused) as raised:
        await outbound.post_json("https://hook.example.test/cb", {}, bearer=TOKEN)
    assert str(raised.value) == f"hook.example.test resolves to a {category} address {address}"
    assert not raised.value.retryable


@pytest.mark.parametrize("order", [["127.0.0.1", "10.0.0.1"], ["10.0.0.1", "127.0.0.1"]])
async def test_refusal_happens_before_any_connection(
    listener: socket.socket, order: list[str]
) -> None:
    """One bad address among the answers refuses the call, and not even the allowed
    (loopback, dev mode) address is connected to."""
    port = listener.getsockname()[1]
    outbound = OutboundClient(dev_settings(), StaticResolver({"hook.example.test": order}))
    with pytest.raises(OutboundRefused, match=r"10\.0\.0\.1"):
        await outbound.post_json(f"https://hook.example.test:{port}/cb", {})
    assert connections(listener) == 0


async def test_an_allowed_name_connects_to_the_checked_address(listener: socket.socket) -> None:
    """The control for the test above: with only allowed answers the connection is made,
    to the address the resolver gave (the name itself resolves nowhere)."""
    port = listener.getsockname()[1]
    resolver = StaticResolver({"hook.example.test": ["127.0.0.1"]})
    outbound = OutboundClient(dev_settings(), resolver, pooled=False)
    with pytest.raises(OutboundError, match="no response within"):
        await outbound.post_json(f"https://hook.example.test:{port}/cb", {}, timeout=0.3)
    assert connections(listener) == 1


async def test_allow_listed_range_is_reached(receiver: Receiver) -> None:
    """An allow-listed CIDR lets a name resolving to loopback through outside dev mode."""
    resolver = StaticResolver({"gw.internal.test": ["127.0.0.1"]})
    outbound = OutboundClient(make_settings(outbound={"allow_list": ["127.0.0.0/8"]}), resolver)
    with pytest.raises(OutboundError) as raised:  # https to a plain http server: TLS fails
        await outbound.post_json(f"https://gw.internal.test:{receiver.port}/cb", {}, timeout=2)
    assert not isinstance(raised.value, OutboundRefused)


async def test_get_json_returns_the_object(receiver: Receiver, client: OutboundClient) -> None:
    receiver.on("/doc", Reply.json({"keys": []}))
    assert await client.get_json(receiver.url("/doc")) == {"keys": []}
    assert receiver.calls[0].method == "GET"


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(500, b"oops"), "answered 500"),
        (Reply(200, b"not json"), "not JSON"),
        (Reply.json([1, 2]), "not a JSON object"),
    ],
)
async def test_get_json_refuses_what_is_not_a_json_object(
    receiver: Receiver, client: OutboundClient, reply: Reply, message: str
) -> None:
    receiver.on("/doc", reply)
    with pytest.raises(OutboundError, match=message):
        await client.get_json(receiver.url("/doc"))


async def test_pooled_client_serves_many_calls_then_closes(receiver: Receiver) -> None:
    outbound = OutboundClient(dev_settings())
    for n in range(3):
        await outbound.post_json(receiver.url("/cb"), {"n": n})
    await outbound.close()
    await outbound.post_json(receiver.url("/cb"), {"n": 3})  # a new pool after close
    await outbound.close()
    assert [call.json()["n"] for call in receiver.calls] == [0, 1, 2, 3]
