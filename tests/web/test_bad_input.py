"""Bad input over HTTP: random forms, raw bytes, content types and methods at the
backchannel and token endpoints never produce a 5xx, always a well-formed OAuth error,
and store nothing (checklist items 77, 78)."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import anyio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backchannel.protocol.provider import Provider
from tests.support.ciba import SECRET, add_client, add_user
from tests.support.http import asgi_client
from tests.support.provider import make_provider

ERROR_CODE = re.compile(r"^[a-z_]+$")
DESCRIPTION = re.compile(r"^[\x20\x21\x23-\x5b\x5d-\x7e]*$")  # CIBA §13 charset
NAMES = [
    "scope", "login_hint", "id_token_hint", "login_hint_token", "binding_message",
    "user_code", "requested_expiry", "acr_values", "client_notification_token", "request",
    "authorization_details", "grant_type", "auth_req_id", "refresh_token", "client_id",
    "client_secret", "client_assertion", "client_assertion_type",
]  # fmt: skip
VALUES = st.one_of(
    st.sampled_from(["openid", "user-1-name", "urn:openid:params:grant-type:ciba", "", "0",
                     "-1", "1e9", "a.b.c", "[]", "[{}]", "{}", "rp-1", SECRET]),
    st.text(max_size=80),
    st.text(alphabet="A-Za-z0-9._-", min_size=100, max_size=3000),
)  # fmt: skip
FORMS = st.lists(st.tuples(st.one_of(st.sampled_from(NAMES), st.text(max_size=10)), VALUES),
                 max_size=12)  # fmt: skip
CONTENT_TYPES = st.sampled_from([
    "application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8",
    "application/json", "text/plain", "multipart/form-data; boundary=x", "",
])  # fmt: skip


async def fresh_provider() -> Provider:
    provider = await make_provider()
    await add_client(provider)
    await add_user(provider)
    return provider


PROVIDER = anyio.run(fresh_provider)


def check(status: int, body: object) -> None:
    assert status < 500
    if status != 200:
        assert isinstance(body, dict)
        assert ERROR_CODE.match(body["error"])
        assert DESCRIPTION.match(body.get("error_description", ""))


async def post(path: str, body: bytes, content_type: str, with_auth: bool) -> int:
    headers = {"content-type": content_type} if content_type else {}
    async with asgi_client(PROVIDER) as client:
        response = await client.post(
            path, content=body, headers=headers, auth=("rp-1", SECRET) if with_auth else None
        )
    check(response.status_code, response.json())
    return response.status_code


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(form=FORMS, path=st.sampled_from(["/bc-authorize", "/token"]), auth=st.booleans())
def test_random_forms_never_5xx_and_store_nothing_half_way(
    form: list[tuple[str, str]], path: str, auth: bool
) -> None:
    before = anyio.run(PROVIDER.storage.requests.list_requests)
    status = anyio.run(
        post, path, urlencode(form).encode(), "application/x-www-form-urlencoded", auth
    )
    after = anyio.run(PROVIDER.storage.requests.list_requests)
    if path == "/token" or status != 200:
        assert after == before


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=st.binary(max_size=400),
    content_type=CONTENT_TYPES,
    path=st.sampled_from(["/bc-authorize", "/token", "/introspect", "/revoke", "/userinfo"]),
)
def test_raw_bytes_and_content_types_never_5xx(body: bytes, content_type: str, path: str) -> None:
    anyio.run(post, path, body, content_type, True)
