"""The token endpoint: transport, client authentication, every CIBA grant error with its
status (items 89-107), single redemption under concurrency, and a property test."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backchannel.protocol.ciba import lifecycle
from backchannel.protocol.endpoints import token
from backchannel.protocol.errors import OAuthError
from backchannel.protocol.http import HttpRequest, HttpResponse
from backchannel.protocol.model import DeliveryMode, RequestState
from backchannel.protocol.ports import Storage
from backchannel.protocol.provider import Provider
from tests.support.ciba import (
    CIBA_GRANT,
    add_client,
    add_user,
    approved_request,
    basic,
    ciba_grant,
    outcome_of,
    pending_request,
    token_request,
)
from tests.support.clock import FakeClock
from tests.support.fixtures import postgres_url, storage
from tests.support.provider import make_provider

__all__ = ["postgres_url", "storage"]  # fixtures: memory, SQLite and PostgreSQL


def error_of(result: HttpResponse | OAuthError) -> tuple[int, str]:
    assert isinstance(result, OAuthError), f"expected an error, got {result}"
    return result.http_status, result.error


@pytest.mark.anyio
async def test_item_89_96_successful_ciba_grant_is_a_no_store_token_response() -> None:
    provider = await make_provider()
    client = await add_client(provider)
    await add_user(provider)
    auth_req_id, _ = await approved_request(provider, client)
    response = await token.handle(provider, ciba_grant(auth_req_id))
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.body["token_type"] == "Bearer"
    assert {"access_token", "id_token", "expires_in", "refresh_token"} <= response.body.keys()


@pytest.mark.anyio
async def test_items_100_to_104_each_state_answers_its_error_with_400() -> None:
    clock = FakeClock()
    provider = await make_provider(clock=clock)
    client = await add_client(provider)
    await add_user(provider)

    pending_id, _ = await pending_request(provider, client)
    assert error_of(await outcome_of(token.handle, provider, ciba_grant(pending_id))) == (
        400,
        "authorization_pending",
    )
    assert error_of(await outcome_of(token.handle, provider, ciba_grant(pending_id))) == (
        400,
        "slow_down",
    )

    denied_id, denied = await pending_request(provider, client)
    await lifecycle.deny(provider, denied)
    assert error_of(await outcome_of(token.handle, provider, ciba_grant(denied_id))) == (
        400,
        "access_denied",
    )

    redeemed_id, _ = await approved_request(provider, client)
    assert isinstance(
        await outcome_of(token.handle, provider, ciba_grant(redeemed_id)), HttpResponse
    )
    assert error_of(await outcome_of(token.handle, provider, ciba_grant(redeemed_id))) == (
        400,
        "invalid_grant",
    )
    assert error_of(await outcome_of(token.handle, provider, ciba_grant("unknown"))) == (
        400,
        "invalid_grant",
    )

    clock.advance(121)
    assert error_of(await outcome_of(token.handle, provider, ciba_grant(pending_id))) == (
        400,
        "expired_token",
    )


@pytest.mark.anyio
async def test_item_91_another_clients_auth_req_id_is_invalid_grant() -> None:
    provider = await make_provider()
    owner = await add_client(provider, "rp-1")
    await add_client(provider, "rp-2")
    await add_user(provider)
    auth_req_id, request = await approved_request(provider, owner)
    result = await outcome_of(token.handle, provider, ciba_grant(auth_req_id, "rp-2"))
    assert error_of(result) == (400, "invalid_grant")
    stored = await provider.storage.requests.get_request(request.id_hash)
    assert stored is not None and stored.state is RequestState.APPROVED


@pytest.mark.anyio
async def test_item_106_push_client_gets_unauthorized_client() -> None:
    provider = await make_provider()
    push = await add_client(provider, "rp-push", mode=DeliveryMode.PUSH)
    auth_req_id, _ = await pending_request(provider, push)
    result = await outcome_of(token.handle, provider, ciba_grant(auth_req_id, "rp-push"))
    assert error_of(result) == (400, "unauthorized_client")


@pytest.mark.anyio
async def test_item_107_bad_basic_credentials_are_401_with_www_authenticate() -> None:
    provider = await make_provider()
    await add_client(provider)
    request = HttpRequest(
        method="POST",
        url="https://op.example.test/token",
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "authorization": basic("rp-1", "wrong-secret"),
        },
        body=urlencode({"grant_type": CIBA_GRANT, "auth_req_id": "x"}).encode(),
    )
    result = await outcome_of(token.handle, provider, request)
    assert error_of(result) == (401, "invalid_client")
    assert isinstance(result, OAuthError)
    assert result.headers["WWW-Authenticate"].startswith("Basic")


@pytest.mark.anyio
async def test_item_90_unauthenticated_request_is_invalid_client() -> None:
    provider = await make_provider()
    await add_client(provider)
    request = token_request({"grant_type": CIBA_GRANT, "auth_req_id": "x"}, client_id=None)
    assert error_of(await outcome_of(token.handle, provider, request)) == (401, "invalid_client")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, (400, "invalid_request")),
        ({"grant_type": CIBA_GRANT}, (400, "invalid_request")),
        ({"grant_type": "authorization_code", "code": "x"}, (400, "unsupported_grant_type")),
        ({"grant_type": "refresh_token"}, (400, "invalid_request")),
        ({"grant_type": "refresh_token", "refresh_token": "nope"}, (400, "invalid_grant")),
    ],
)
async def test_grant_type_and_parameter_errors(
    fields: dict[str, str], expected: tuple[int, str]
) -> None:
    provider = await make_provider()
    await add_client(provider)
    assert error_of(await outcome_of(token.handle, provider, token_request(fields))) == expected


@pytest.mark.anyio
async def test_item_89_repeated_parameter_and_wrong_method_and_media_type() -> None:
    provider = await make_provider()
    await add_client(provider)
    repeated = HttpRequest(
        method="POST",
        url="https://op.example.test/token",
        headers={
            "content-type": "application/x-www-form-urlencoded",
            "authorization": basic("rp-1"),
        },
        body=b"grant_type=" + CIBA_GRANT.encode() + b"&auth_req_id=a&auth_req_id=b",
    )
    assert error_of(await outcome_of(token.handle, provider, repeated)) == (400, "invalid_request")
    json_body = HttpRequest(
        method="POST",
        url="https://op.example.test/token",
        headers={"content-type": "application/json", "authorization": basic("rp-1")},
        body=b"{}",
    )
    assert error_of(await outcome_of(token.handle, provider, json_body)) == (400, "invalid_request")
    get = HttpRequest(method="GET", url="https://op.example.test/token", headers={})
    assert error_of(await outcome_of(token.handle, provider, get)) == (405, "method_not_allowed")


@pytest.mark.anyio
async def test_item_97_single_redemption_under_ten_concurrent_calls(storage: Storage) -> None:
    provider = await make_provider(storage=storage)
    client = await add_client(provider)
    await add_user(provider)
    auth_req_id, request = await approved_request(provider, client)
    results: list[HttpResponse | OAuthError] = []

    async def redeem() -> None:
        results.append(await outcome_of(token.handle, provider, ciba_grant(auth_req_id)))

    async with anyio.create_task_group() as group:
        for _ in range(10):
            group.start_soon(redeem)
    successes = [r for r in results if isinstance(r, HttpResponse)]
    failures = [error_of(r) for r in results if not isinstance(r, HttpResponse)]
    assert len(successes) == 1
    assert failures == [(400, "invalid_grant")] * 9
    stored = await provider.storage.requests.get_request(request.id_hash)
    assert stored is not None and stored.state is RequestState.REDEEMED


# -- property: random forms never crash, always carry a wire code, and change no state ------

FIELD_NAMES = st.sampled_from(
    ["grant_type", "auth_req_id", "refresh_token", "scope", "client_id", "client_secret", "x"]
)


@pytest.fixture(scope="module")
def portal() -> Iterator[BlockingPortal]:
    with start_blocking_portal("asyncio") as running:
        yield running


@pytest.fixture(scope="module")
def seeded(portal: BlockingPortal) -> tuple[Provider, list[str]]:
    """A provider with requests in every state a poll must not change (no approved one)."""

    async def build() -> tuple[Provider, list[str]]:
        provider = await make_provider()
        client = await add_client(provider)
        await add_client(provider, "rp-push", mode=DeliveryMode.PUSH)
        await add_user(provider)
        pending_id, _ = await pending_request(provider, client, expires_in=10**6)
        denied_id, denied = await pending_request(provider, client, expires_in=10**6)
        await lifecycle.deny(provider, denied)
        redeemed_id, _ = await approved_request(provider, client)
        await token.handle(provider, ciba_grant(redeemed_id))
        return provider, [pending_id, denied_id, redeemed_id]

    return portal.call(build)


def values(known: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from([CIBA_GRANT, "refresh_token", "password", "", *known]),
        st.text(max_size=40),
    )


async def states(provider: Provider) -> dict[str, RequestState]:
    return {r.id_hash: r.state for r in await provider.storage.requests.list_requests()}


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_random_forms_give_oauth_errors_and_change_no_state(
    portal: BlockingPortal, seeded: tuple[Provider, list[str]], data: st.DataObject
) -> None:
    provider, known = seeded
    pairs = data.draw(st.lists(st.tuples(FIELD_NAMES, values(known)), max_size=6))
    client_id = data.draw(st.sampled_from(["rp-1", "rp-push", "nobody", None]))
    request = token_request(pairs, client_id=client_id)

    before = portal.call(states, provider)
    result = portal.call(outcome_of, token.handle, provider, request)
    after = portal.call(states, provider)

    assert before == after
    # No request is approved and no refresh token is known, so nothing can succeed.
    assert isinstance(result, OAuthError)
    assert result.error and result.error != "server_error"
    assert 400 <= result.http_status < 500
