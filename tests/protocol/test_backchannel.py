"""The backchannel authentication endpoint, end to end through ``handle`` (CIBA §7, §13)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from backchannel.protocol import errors
from backchannel.protocol.ciba.delivery import open_request_secret
from backchannel.protocol.ciba.request import PARAMETERS
from backchannel.protocol.errors import OAuthError
from backchannel.protocol.http import HttpRequest, HttpResponse
from backchannel.protocol.model import AuthMethod, DeliveryMode, RequestState
from backchannel.protocol.provider import Provider
from tests.protocol.backchannel_support import (
    add_person,
    call,
    fails,
    new_provider,
    ok,
    only_request,
    post,
    register,
)
from tests.support.ciba import SECRET

pytestmark = pytest.mark.anyio
FORM = {"scope": "openid", "login_hint": "alice@example.test"}


async def ready(mode: DeliveryMode = DeliveryMode.POLL, **client_fields: Any) -> Provider:
    provider = await new_provider()
    await register(provider, mode=mode, **client_fields)
    await add_person(provider)
    return provider


# -- success (items 70-76) --------------------------------------------------------------------


async def test_items_70_75_acknowledgement_body_and_headers() -> None:
    provider = await ready()
    response = await ok(provider, post(FORM))
    assert set(response.body) == {"auth_req_id", "expires_in", "interval"}
    assert response.body["expires_in"] == provider.settings.ciba.default_expires_in
    assert response.body["interval"] == provider.settings.ciba.interval
    assert response.headers["Cache-Control"] == "no-store"


async def test_items_71_72_p8_auth_req_id_is_long_url_safe_and_unique() -> None:
    provider = await ready()
    ids = {(await ok(provider, post(FORM))).body["auth_req_id"] for _ in range(5)}
    assert len(ids) == 5
    for auth_req_id in ids:
        assert re.fullmatch(r"[A-Za-z0-9._\-]{43,}", auth_req_id)  # >= 256 bits


async def test_item_76_stored_request_holds_only_the_hash_and_all_parameters() -> None:
    provider = await ready()
    fields = {
        **FORM,
        "scope": "openid profile",
        "acr_values": "urn:a urn:b",
        "binding_message": "K2",
    }
    auth_req_id = (await ok(provider, post(fields))).body["auth_req_id"]
    stored = await only_request(provider)
    assert stored.id_hash == provider.hasher.fast(auth_req_id) != auth_req_id
    assert (stored.client_id, stored.subject) == ("rp-1", "u_alice")
    assert stored.scope == ("openid", "profile")
    assert stored.acr_values == ("urn:a", "urn:b")  # item 36
    assert stored.binding_message == "K2"
    assert stored.state is RequestState.PENDING
    assert stored.delivery_mode is DeliveryMode.POLL
    assert stored.expires_at == provider.clock.now() + 120


async def test_timeline_created_event_never_contains_the_auth_req_id() -> None:
    provider = await ready()
    auth_req_id = (await ok(provider, post(FORM))).body["auth_req_id"]
    stored = await only_request(provider)
    [created] = await provider.storage.requests.timeline(stored.id_hash)
    assert created.kind == "created"
    assert created.detail == {"client_id": "rp-1", "hint_kind": "login_hint"}
    assert auth_req_id not in json.dumps(created.detail)


@pytest.mark.parametrize("mode, has_interval", [("poll", True), ("ping", True), ("push", False)])
async def test_item_74_interval_only_for_poll_and_ping(mode: str, has_interval: bool) -> None:
    provider = await ready(DeliveryMode(mode))
    fields = {**FORM, "client_notification_token": "tok-" + "a" * 30}
    response = await ok(provider, post(fields))
    assert ("interval" in response.body) is has_interval
    stored = await only_request(provider)
    # Never stored in plaintext: sealed with the auth_req_id (poll: the token is ignored).
    assert stored.client_notification_token is None
    secret = open_request_secret(provider, stored)
    expected = None if mode == "poll" else fields["client_notification_token"]
    assert (secret.client_notification_token if secret else None) == expected


@pytest.mark.parametrize(
    "requested, expires_in", [("60", 60), ("600", 600), ("100000", 600), ("9" * 5000, 600)]
)
async def test_item_47_requested_expiry_shortens_and_is_capped(
    requested: str, expires_in: int
) -> None:
    provider = await ready()
    response = await ok(provider, post({**FORM, "requested_expiry": requested}))
    assert response.body["expires_in"] == expires_in
    stored = await only_request(provider)
    assert stored.expires_at - stored.created_at == expires_in
    assert stored.requested_expiry == expires_in


async def test_item_49_unknown_parameters_are_ignored() -> None:
    provider = await ready()
    await ok(provider, post({**FORM, "prompt": "x", "request_context": '{"pos": 1}'}))


async def test_item_33_extra_registered_scopes_are_kept_in_order() -> None:
    provider = await ready()
    await ok(provider, post({**FORM, "scope": "email openid email profile"}))
    assert (await only_request(provider)).scope == ("email", "openid", "profile")


async def test_authorization_details_are_parsed_and_stored() -> None:
    provider = await ready(authorization_details_types=("payment_initiation",))
    details = [
        {
            "type": "payment_initiation",
            "instructedAmount": {"currency": "EUR", "amount": "12.00"},
            "creditorName": "Merchant A",
            "creditorAccount": {"iban": "DE02100100109307118603"},
        }
    ]
    await ok(provider, post({**FORM, "authorization_details": json.dumps(details)}))
    assert (await only_request(provider)).authorization_details == details


# -- transport (items 26, 78) -------------------------------------------------------------------


async def test_item_26_only_post_is_allowed() -> None:
    provider = await ready()
    await fails(provider, post(FORM, method="GET"), "method_not_allowed", 405)


async def test_item_26_form_encoding_is_required() -> None:
    provider = await ready()
    await fails(provider, post(FORM, content_type="application/json"), "invalid_request")


async def test_item_78_repeated_parameter_is_invalid_request() -> None:
    provider = await ready()
    fields = [("scope", "openid"), ("login_hint", "alice"), ("scope", "openid")]
    assert "repeated" in await fails(provider, post(fields), "invalid_request")


async def test_item_85_invalid_client_is_401() -> None:
    provider = await ready()
    await fails(provider, post(FORM, secret="wrong"), "invalid_client", 401)


async def test_item_85_client_authentication_comes_first() -> None:
    """Item 66: a bad client is reported before bad parameters."""
    provider = await ready()
    await fails(provider, post({"scope": "nope"}, client_id=None), "invalid_client", 401)


# -- parameters (items 32-36, 47, 48, P1) ---------------------------------------------------------


async def test_item_32_scope_is_required() -> None:
    provider = await ready()
    await fails(provider, post({"login_hint": "alice"}), "invalid_request")


async def test_item_32_scope_without_openid_is_invalid_scope() -> None:
    provider = await ready()
    assert "openid" in await fails(provider, post({**FORM, "scope": "email"}), "invalid_scope")


@pytest.mark.parametrize("scope", ["openid payments", "openid address", 'openid a"b'])
async def test_items_33_79_unknown_or_unregistered_scope_is_refused(scope: str) -> None:
    provider = await ready()
    description = await fails(provider, post({**FORM, "scope": scope}), "invalid_scope")
    assert scope.split(" ")[1] in description or "malformed" in description


@pytest.mark.parametrize(
    "hints",
    [
        {},
        {"login_hint": "alice", "id_token_hint": "a.b.c"},
        {"login_hint": "alice", "login_hint_token": "a.b.c"},
        {"id_token_hint": "a.b.c", "login_hint_token": "a.b.c"},
    ],
)
async def test_p1_item_78_exactly_one_hint(hints: dict[str, str]) -> None:
    provider = await ready()
    description = await fails(provider, post({"scope": "openid", **hints}), "invalid_request")
    assert "exactly one" in description


@pytest.mark.parametrize("value", ["0", "-5", "1.5", "abc", " 60", "+60", "1e3", "٣"])
async def test_items_48_p3_invalid_requested_expiry_is_invalid_request(value: str) -> None:
    provider = await ready()
    await fails(provider, post({**FORM, "requested_expiry": value}), "invalid_request")


@pytest.mark.parametrize("mode", [DeliveryMode.PING, DeliveryMode.PUSH])
async def test_item_34_ping_and_push_need_a_notification_token(mode: DeliveryMode) -> None:
    provider = await ready(mode)
    await fails(provider, post(FORM), "invalid_request")


@pytest.mark.parametrize("token", ["a" * 1025, "has space", "ünicode", "a=b", "tok\t"])
async def test_item_35_notification_token_syntax_and_length(token: str) -> None:
    provider = await ready(DeliveryMode.PING)
    await fails(provider, post({**FORM, "client_notification_token": token}), "invalid_request")


async def test_item_35_notification_token_of_1024_b64token_chars_is_accepted() -> None:
    provider = await ready(DeliveryMode.PING)
    token = ("Ab9-._~+/" * 200)[:1022] + "=="
    await ok(provider, post({**FORM, "client_notification_token": token}))


@pytest.mark.parametrize(
    "details",
    [
        "not json",
        "{}",
        "[]",
        '["payment_initiation"]',
        '[{"amount": 1}]',
        '[{"type": 7}]',
        '[{"type": "account_information"}]',
    ],
)
async def test_item_87_invalid_authorization_details(details: str) -> None:
    provider = await ready(authorization_details_types=("payment_initiation",))
    await fails(
        provider,
        post({**FORM, "authorization_details": details}),
        "invalid_authorization_details",
    )


@pytest.mark.parametrize("mode", [DeliveryMode.PING, DeliveryMode.PUSH])
async def test_items_69_82_client_without_notification_endpoint_is_unauthorized(
    mode: DeliveryMode,
) -> None:
    provider = await ready(mode, notification_endpoint=None)
    fields = {**FORM, "client_notification_token": "t" * 30}
    await fails(provider, post(fields), "unauthorized_client")


# -- error codes and statuses (P2, items 77-88) ---------------------------------------------------


@pytest.mark.parametrize(
    "error_class, status",
    [
        (errors.InvalidClient, 401),
        (errors.AccessDenied, 403),
        (errors.InvalidRequest, 400),
        (errors.InvalidScope, 400),
        (errors.ExpiredLoginHintToken, 400),
        (errors.UnknownUserId, 400),
        (errors.UnauthorizedClient, 400),
        (errors.MissingUserCode, 400),
        (errors.InvalidUserCode, 400),
        (errors.InvalidBindingMessage, 400),
        (errors.InvalidAuthorizationDetails, 400),
    ],
)
def test_p2_backchannel_error_statuses(error_class: type[OAuthError], status: int) -> None:
    assert error_class("x").http_status == status


async def test_item_81_unknown_user_is_unknown_user_id() -> None:
    provider = await ready()
    await fails(provider, post({**FORM, "login_hint": "bob"}), "unknown_user_id")


async def test_item_66_hint_is_resolved_before_the_binding_message_is_checked() -> None:
    provider = await ready()
    fields = {**FORM, "login_hint": "bob", "binding_message": "x" * 500}
    await fails(provider, post(fields), "unknown_user_id")


async def test_item_66_parameters_are_read_before_the_hint_is_resolved() -> None:
    provider = await ready()
    await fails(provider, post({**FORM, "login_hint": "bob", "scope": "email"}), "invalid_scope")


async def test_item_19_post_client_at_the_backchannel_endpoint() -> None:
    provider = await new_provider()
    await register(provider, method=AuthMethod.CLIENT_SECRET_POST)
    await add_person(provider)
    fields = {**FORM, "client_id": "rp-1", "client_secret": SECRET}
    await ok(provider, post(fields, client_id=None))


# -- property: nothing but OAuth errors, and failures store nothing ------------------------------

_NAMES = st.sampled_from(
    [*PARAMETERS, "request", "client_id", "client_secret", "client_assertion", "junk", ""]
)
_VALUES = st.one_of(
    st.sampled_from(
        [
            "openid",
            "openid email",
            "alice",
            "alice@example.test",
            "60",
            "0",
            "-1",
            "[]",
            '[{"type":"x"}]',
            "a.b.c",
            "",
            "🙂" * 70,
            "x" * 5000,
        ]
    ),
    st.text(max_size=80),
)
_PAIRS = st.lists(st.tuples(_NAMES, _VALUES), max_size=10)
_shared: list[Provider] = []


async def shared_provider() -> Provider:
    """One provider for all examples (key generation is slow); state carries over, which
    only makes the property stronger."""
    if not _shared:
        provider = await new_provider()
        await register(provider)
        await register(provider, "rp-code", user_code_parameter=True)
        await register(provider, "rp-ping", mode=DeliveryMode.PING)
        await add_person(provider, user_code="4242")
        _shared.append(provider)
    return _shared[0]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.booleans(),
    pairs=_PAIRS,
    client_id=st.sampled_from(["rp-1", "rp-code", "rp-ping", "ghost", None]),
)
async def test_random_forms_give_oauth_errors_and_store_nothing_on_failure(
    base: bool, pairs: list[tuple[str, str]], client_id: str | None
) -> None:
    """Random parameter names and values, optionally on top of a valid request."""
    if base:
        pairs = [("scope", "openid"), ("login_hint", "alice"), *pairs]
    provider = await shared_provider()
    before = len(await provider.storage.requests.list_requests(limit=100_000))
    request: HttpRequest = post(pairs, client_id=client_id)
    outcome = await call(provider, request)  # anything but OAuthError propagates and fails
    after = len(await provider.storage.requests.list_requests(limit=100_000))
    if isinstance(outcome, OAuthError):
        assert outcome.body()["error"]
        assert 400 <= outcome.http_status < 500
        assert after == before
        event(outcome.error)
    else:
        assert isinstance(outcome, HttpResponse) and outcome.status == 200
        assert after == before + 1
        event("success")
