"""The one approve/deny entry (outcome.decide), operator lookups, and the test hook."""

from __future__ import annotations

import pytest

from backchannel.protocol.ciba import lifecycle, outcome
from backchannel.protocol.endpoints import testing
from backchannel.protocol.errors import Conflict, InvalidRequest, NotFound, OAuthError
from backchannel.protocol.http import HttpResponse
from backchannel.protocol.model import RequestState
from backchannel.protocol.provider import Provider
from tests.support.ciba import add_client, form_request, outcome_of, pending_request
from tests.support.clock import FakeClock
from tests.support.provider import make_provider

pytestmark = pytest.mark.anyio


async def hook_provider(clock: FakeClock | None = None) -> Provider:
    return await make_provider(clock=clock, testing={"automated_approval": True})


async def test_approve_records_channel_acr_and_amr() -> None:
    provider = await make_provider()
    client = await add_client(provider)
    _, request = await pending_request(provider, client, acr_values=("urn:acr:3", "urn:acr:2"))
    decided = await outcome.decide(
        provider, request, approve=True, channel="cli", acr="urn:acr:2", amr=("pwd",)
    )
    assert (decided.state, decided.acr, decided.amr) == (
        RequestState.APPROVED,
        "urn:acr:2",
        ("pwd",),
    )
    assert decided.auth_time == provider.clock.now()
    timeline = await provider.storage.requests.timeline(request.id_hash)
    assert (timeline[-1].kind, timeline[-1].detail) == ("approved", {"channel": "cli"})


async def test_item_129_acr_falls_back_to_the_first_requested_value_then_none() -> None:
    provider = await make_provider()
    client = await add_client(provider)
    _, with_values = await pending_request(provider, client, acr_values=("urn:acr:3", "urn:acr:2"))
    _, without = await pending_request(provider, client)
    assert (
        await outcome.decide(provider, with_values, approve=True, channel="test")
    ).acr == "urn:acr:3"
    assert (await outcome.decide(provider, without, approve=True, channel="test")).acr is None


async def test_items_37_129_other_channels_never_claim_a_level_nobody_achieved() -> None:
    provider = await make_provider()
    client = await add_client(provider)
    _, request = await pending_request(provider, client, acr_values=("urn:acr:3",))
    decided = await outcome.decide(provider, request, approve=True, channel="cli")
    assert decided.acr is None


async def test_deny_then_a_second_decision_is_refused_with_409() -> None:
    provider = await make_provider()
    client = await add_client(provider)
    _, request = await pending_request(provider, client)
    denied = await outcome.decide(provider, request, approve=False, channel="cli", reason="user")
    assert denied.state is RequestState.DENIED
    for approve in (True, False):
        with pytest.raises(lifecycle.NotPending) as caught:
            await outcome.decide(provider, request, approve=approve, channel="cli")
        assert isinstance(caught.value, Conflict) and caught.value.http_status == 409
    stored = await provider.storage.requests.get_request(request.id_hash)
    assert stored is not None and stored.state is RequestState.DENIED


async def test_deciding_an_overdue_request_expires_it_instead() -> None:
    clock = FakeClock()
    provider = await make_provider(clock=clock)
    client = await add_client(provider)
    _, request = await pending_request(provider, client, expires_in=30)
    clock.advance(30)
    with pytest.raises(lifecycle.NotPending, match="expired"):
        await outcome.decide(provider, request, approve=True, channel="cli")


async def test_find_by_auth_req_id_and_by_ref() -> None:
    provider = await make_provider()
    client = await add_client(provider)
    auth_req_id, request = await pending_request(provider, client)
    found = await outcome.find_by_auth_req_id(provider, auth_req_id)
    assert found is not None and found.id_hash == request.id_hash
    assert await outcome.find_by_auth_req_id(provider, "nope") is None
    assert (await outcome.find_by_ref(provider, request.ref)).id_hash == request.id_hash
    bare = request.id_hash.removeprefix("hmac:")[:10]
    assert (await outcome.find_by_ref(provider, bare)).id_hash == request.id_hash


async def test_find_by_ref_not_found_and_ambiguous() -> None:
    provider = await make_provider()
    client = await add_client(provider)
    await pending_request(provider, client)
    await pending_request(provider, client)
    with pytest.raises(NotFound):
        await outcome.find_by_ref(provider, "zzzz")  # not hex: matches nothing
    with pytest.raises(InvalidRequest, match="matches 2"):
        await outcome.find_by_ref(provider, "hmac:")
    with pytest.raises(InvalidRequest):
        await outcome.find_by_ref(provider, "  ")


# -- the automated approval hook --------------------------------------------------------------


async def call_hook(provider: Provider, auth_req_id: str, action: str) -> HttpResponse | OAuthError:
    request = form_request(
        "/test/ciba/approve", {"auth_req_id": auth_req_id, "action": action}, client_id=None
    )
    return await outcome_of(testing.approve_hook, provider, request)


@pytest.mark.parametrize(("action", "result"), [("allow", "approved"), ("deny", "denied")])
async def test_hook_decides_with_200(action: str, result: str) -> None:
    provider = await hook_provider()
    client = await add_client(provider)
    auth_req_id, request = await pending_request(provider, client)
    response = await call_hook(provider, auth_req_id, action)
    assert isinstance(response, HttpResponse)
    assert (response.status, response.body) == (200, {"result": result})
    timeline = await provider.storage.requests.timeline(request.id_hash)
    assert (timeline[-1].kind, timeline[-1].detail["channel"]) == (result, "test")


async def test_hook_unknown_id_is_404_and_second_decision_is_409() -> None:
    provider = await hook_provider()
    client = await add_client(provider)
    auth_req_id, _ = await pending_request(provider, client)
    unknown = await call_hook(provider, "no-such-id", "allow")
    assert isinstance(unknown, OAuthError) and unknown.http_status == 404
    assert isinstance(await call_hook(provider, auth_req_id, "allow"), HttpResponse)
    again = await call_hook(provider, auth_req_id, "deny")
    assert isinstance(again, OAuthError) and (again.http_status, again.error) == (409, "conflict")


async def test_hook_refuses_bad_actions_and_is_off_by_default() -> None:
    provider = await hook_provider()
    client = await add_client(provider)
    auth_req_id, request = await pending_request(provider, client)
    bad = await call_hook(provider, auth_req_id, "maybe")
    assert isinstance(bad, OAuthError) and (bad.http_status, bad.error) == (400, "invalid_request")

    disabled = await make_provider(storage=provider.storage)
    off = await call_hook(disabled, auth_req_id, "allow")
    assert isinstance(off, OAuthError) and off.http_status == 404
    stored = await provider.storage.requests.get_request(request.id_hash)
    assert stored is not None and stored.state is RequestState.PENDING
