"""Client authentication shared by the backchannel and token endpoints (items 6, 19, 27,
85, 88, 107, 165-169)."""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode

import pytest

from backchannel.protocol.client_auth import authenticate_client
from backchannel.protocol.errors import OAuthError
from backchannel.protocol.http import HttpRequest
from backchannel.protocol.model import AuthMethod, Client
from backchannel.protocol.provider import Provider
from tests.protocol.backchannel_support import (
    BC_URL,
    ES256_KEY,
    JWT_BEARER,
    NOW,
    OTHER_KEY,
    PS256_KEY,
    RS256_KEY,
    TOKEN_URL,
    ClientKey,
    assertion,
    assertion_fields,
    new_provider,
    register,
)
from tests.support.ciba import SECRET, basic
from tests.support.provider import ISSUER

pytestmark = pytest.mark.anyio
INTROSPECTION_URL = ISSUER + "/introspect"


def b64json(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def form_post(fields: dict[str, str], authorization: str | None = None) -> HttpRequest:
    headers = {"content-type": "application/x-www-form-urlencoded"}
    if authorization is not None:
        headers["authorization"] = authorization
    return HttpRequest("POST", BC_URL, headers, urlencode(fields).encode())


async def authenticate(
    provider: Provider, request: HttpRequest, endpoint_url: str = BC_URL
) -> Client | OAuthError:
    try:
        return await authenticate_client(provider, request, request.form(), endpoint_url)
    except OAuthError as error:
        return error


async def refused(
    provider: Provider,
    request: HttpRequest,
    error: str = "invalid_client",
    *,
    endpoint_url: str = BC_URL,
) -> OAuthError:
    outcome = await authenticate(provider, request, endpoint_url)
    assert isinstance(outcome, OAuthError), f"expected {error}, got client {outcome}"
    assert outcome.error == error, outcome.body()
    assert outcome.http_status == (401 if error == "invalid_client" else 400)
    return outcome


async def jwt_provider(key: ClientKey = ES256_KEY) -> Provider:
    provider = await new_provider()
    await register(provider, method=AuthMethod.PRIVATE_KEY_JWT, key=key)
    return provider


# -- shared secrets ----------------------------------------------------------------------------


async def test_items_6_19_client_secret_basic() -> None:
    provider = await new_provider()
    await register(provider)
    client = await authenticate(provider, form_post({}, basic("rp-1")))
    assert isinstance(client, Client) and client.client_id == "rp-1"


async def test_item_19_client_secret_post() -> None:
    provider = await new_provider()
    await register(provider, method=AuthMethod.CLIENT_SECRET_POST)
    client = await authenticate(provider, form_post({"client_id": "rp-1", "client_secret": SECRET}))
    assert isinstance(client, Client) and client.client_id == "rp-1"


async def test_basic_with_matching_form_client_id_is_accepted() -> None:
    provider = await new_provider()
    await register(provider)
    client = await authenticate(provider, form_post({"client_id": "rp-1"}, basic("rp-1")))
    assert isinstance(client, Client)


async def test_argon2_client_secret_is_verified_too() -> None:
    provider = await new_provider()
    await register(provider)
    stored = await provider.storage.clients.get_client("rp-1")
    assert stored is not None
    stored.secret_hash = provider.hasher.slow("chosen by an operator")
    await provider.storage.clients.update_client(stored)
    client = await authenticate(provider, form_post({}, basic("rp-1", "chosen by an operator")))
    assert isinstance(client, Client)


async def test_item_85_no_authentication_is_invalid_client_without_challenge() -> None:
    provider = await new_provider()
    await register(provider)
    error = await refused(provider, form_post({"client_id": "rp-1"}))
    assert "WWW-Authenticate" not in error.headers


@pytest.mark.parametrize("client_id, secret", [("rp-1", "wrong"), ("nobody", SECRET)])
async def test_items_88_107_failed_basic_is_401_with_www_authenticate(
    client_id: str, secret: str
) -> None:
    provider = await new_provider()
    await register(provider)
    error = await refused(provider, form_post({}, basic(client_id, secret)))
    assert error.headers["WWW-Authenticate"].startswith("Basic")


async def test_item_85_wrong_post_secret_is_401_without_challenge() -> None:
    provider = await new_provider()
    await register(provider, method=AuthMethod.CLIENT_SECRET_POST)
    error = await refused(provider, form_post({"client_id": "rp-1", "client_secret": "nope"}))
    assert "WWW-Authenticate" not in error.headers


async def test_client_secret_without_client_id_is_invalid_client() -> None:
    provider = await new_provider()
    await register(provider, method=AuthMethod.CLIENT_SECRET_POST)
    await refused(provider, form_post({"client_secret": SECRET}))


async def test_malformed_basic_header_is_invalid_client() -> None:
    provider = await new_provider()
    error = await refused(provider, form_post({}, "Basic %%%not-base64"))
    assert "WWW-Authenticate" in error.headers


async def test_basic_with_a_different_form_client_id_is_invalid_client() -> None:
    provider = await new_provider()
    await register(provider)
    await register(provider, "rp-2")
    await refused(provider, form_post({"client_id": "rp-2"}, basic("rp-1")))


async def test_percent_encoded_basic_credentials_are_decoded() -> None:
    """RFC 6749 §2.3.1: id and secret are form-urlencoded inside Basic."""
    provider = await new_provider()
    await register(provider, "rp:1")
    raw = base64.b64encode(f"rp%3A1:{SECRET}".encode()).decode()
    client = await authenticate(provider, form_post({}, f"Basic {raw}"))
    assert isinstance(client, Client) and client.client_id == "rp:1"


@pytest.mark.parametrize(
    "registered, fields, header",
    [
        (AuthMethod.CLIENT_SECRET_POST, {}, basic("rp-1")),
        (AuthMethod.CLIENT_SECRET_BASIC, {"client_id": "rp-1", "client_secret": SECRET}, None),
    ],
)
async def test_item_19_method_other_than_registered_is_invalid_client(
    registered: AuthMethod, fields: dict[str, str], header: str | None
) -> None:
    provider = await new_provider()
    await register(provider, method=registered)
    error = await refused(provider, form_post(fields, header))
    assert registered.value in error.description


async def test_item_19_secret_client_cannot_use_an_assertion() -> None:
    provider = await new_provider()
    await register(provider, key=ES256_KEY)  # client_secret_basic, but with keys
    await refused(provider, form_post(assertion_fields(assertion(ES256_KEY))))


@pytest.mark.parametrize(
    "fields, header",
    [
        ({"client_id": "rp-1", "client_secret": SECRET}, basic("rp-1")),
        ({"client_assertion_type": JWT_BEARER, "client_assertion": "x.y.z"}, basic("rp-1")),
        (
            {"client_id": "rp-1", "client_secret": SECRET, "client_assertion_type": JWT_BEARER},
            None,
        ),
    ],
)
async def test_two_methods_at_once_is_invalid_request(
    fields: dict[str, str], header: str | None
) -> None:
    provider = await new_provider()
    await register(provider)
    await refused(provider, form_post(fields, header), "invalid_request")


async def test_item_78_repeated_client_secret_is_invalid_request() -> None:
    provider = await new_provider()
    await register(provider, method=AuthMethod.CLIENT_SECRET_POST)
    body = urlencode([("client_id", "rp-1"), ("client_secret", SECRET), ("client_secret", "x")])
    request = HttpRequest(
        "POST", BC_URL, {"content-type": "application/x-www-form-urlencoded"}, body.encode()
    )
    await refused(provider, request, "invalid_request")


# -- private_key_jwt -----------------------------------------------------------------------------


@pytest.mark.parametrize("key", [ES256_KEY, PS256_KEY, RS256_KEY], ids=lambda k: k.alg)
async def test_item_165_private_key_jwt_with_each_algorithm(key: ClientKey) -> None:
    provider = await jwt_provider(key)
    client = await authenticate(provider, form_post(assertion_fields(assertion(key))))
    assert isinstance(client, Client) and client.client_id == "rp-1"


@pytest.mark.parametrize(
    "aud, endpoint_url",
    [
        (ISSUER, BC_URL),
        ([ISSUER, "https://x"], BC_URL),
        (BC_URL, BC_URL),
        (TOKEN_URL, TOKEN_URL),
        (TOKEN_URL, BC_URL),  # CIBA Final §7.1: MUST accept the token endpoint URL here
        (INTROSPECTION_URL, INTROSPECTION_URL),
        (["https://x", BC_URL], BC_URL),
    ],
)
async def test_item_27_assertion_audience_issuer_or_called_endpoint(
    aud: object, endpoint_url: str
) -> None:
    provider = await jwt_provider()
    request = form_post(assertion_fields(assertion(ES256_KEY, aud=aud)))
    assert isinstance(await authenticate(provider, request, endpoint_url), Client)


@pytest.mark.parametrize("aud", [INTROSPECTION_URL, "https://elsewhere.test", ["x"], 5, None])
async def test_item_27_assertion_audience_of_another_endpoint_is_refused(aud: object) -> None:
    provider = await jwt_provider()
    await refused(provider, form_post(assertion_fields(assertion(ES256_KEY, aud=aud))))


async def test_item_27_backchannel_audience_is_refused_at_the_token_endpoint() -> None:
    provider = await jwt_provider()
    request = form_post(assertion_fields(assertion(ES256_KEY, aud=BC_URL)))
    await refused(provider, request, endpoint_url=TOKEN_URL)


async def test_item_165_wrong_assertion_type_is_invalid_client() -> None:
    provider = await jwt_provider()
    fields = {"client_assertion_type": "urn:other", "client_assertion": assertion(ES256_KEY)}
    await refused(provider, form_post(fields))


async def test_item_165_assertion_type_without_assertion_is_invalid_client() -> None:
    provider = await jwt_provider()
    await refused(provider, form_post({"client_assertion_type": JWT_BEARER}))


async def test_item_165_garbage_assertion_is_invalid_client() -> None:
    provider = await jwt_provider()
    await refused(provider, form_post(assertion_fields("not-a-jwt")))


@pytest.mark.parametrize(
    "claims",
    [{"iss": "someone-else"}, {"sub": "someone-else"}],
    ids=["iss", "sub"],
)
async def test_item_166_iss_and_sub_must_be_the_client_id(claims: dict[str, str]) -> None:
    provider = await jwt_provider()
    token = ES256_KEY.sign(
        {"iss": "rp-1", "sub": "rp-1", "aud": ISSUER, "exp": NOW + 60, "jti": "j", **claims}
    )
    await refused(provider, form_post(assertion_fields(token)))


async def test_item_166_exp_is_required() -> None:
    provider = await jwt_provider()
    await refused(provider, form_post(assertion_fields(assertion(ES256_KEY, exp=None))))


async def test_item_166_jti_is_required() -> None:
    provider = await jwt_provider()
    await refused(provider, form_post(assertion_fields(assertion(ES256_KEY, jti=None))))


async def test_item_167_expired_assertion_is_refused_beyond_clock_skew() -> None:
    provider = await jwt_provider()
    skew = provider.settings.ciba.clock_skew_seconds
    await refused(provider, form_post(assertion_fields(assertion(ES256_KEY, exp=NOW - skew))))
    within = assertion(ES256_KEY, exp=NOW - skew + 1, jti="j2")
    assert isinstance(await authenticate(provider, form_post(assertion_fields(within))), Client)


async def test_item_168_assertion_signed_by_another_key_is_invalid_client() -> None:
    provider = await jwt_provider()
    error = await refused(provider, form_post(assertion_fields(assertion(OTHER_KEY))))
    assert "client_assertion" in error.description


async def test_item_168_hmac_and_none_assertions_are_refused() -> None:
    provider = await jwt_provider()
    claims = {"iss": "rp-1", "sub": "rp-1", "aud": ISSUER, "exp": int(NOW) + 60, "jti": "n"}
    payload = b64json(claims)
    await refused(provider, form_post(assertion_fields(f"{b64json({'alg': 'none'})}.{payload}.")))
    hs256 = f"{b64json({'alg': 'HS256'})}.{payload}.c2ln"
    await refused(provider, form_post(assertion_fields(hs256)))


async def test_item_169_assertion_replay_is_refused() -> None:
    provider = await jwt_provider()
    token = assertion(ES256_KEY)
    assert isinstance(await authenticate(provider, form_post(assertion_fields(token))), Client)
    error = await refused(provider, form_post(assertion_fields(token)))
    assert "already used" in error.description


async def test_assertion_form_client_id_must_match_sub() -> None:
    provider = await jwt_provider()
    fields = {"client_id": "rp-2", **assertion_fields(assertion(ES256_KEY))}
    await refused(provider, form_post(fields))
    fields["client_id"] = "rp-1"
    assert isinstance(await authenticate(provider, form_post(fields)), Client)


async def test_assertion_for_an_unknown_client_is_invalid_client() -> None:
    provider = await jwt_provider()
    await refused(provider, form_post(assertion_fields(assertion(ES256_KEY, "ghost"))))


async def test_jwks_uri_client_is_refused_when_no_key_fetcher_is_configured() -> None:
    """Without an outbound fetcher (this test provider has none) the keys cannot be had,
    which is invalid_client, never a crash; fetching itself is tests/outbound/."""
    provider = await new_provider()
    await register(provider, method=AuthMethod.PRIVATE_KEY_JWT, jwks_uri="https://rp/jwks")
    error = await refused(provider, form_post(assertion_fields(assertion(ES256_KEY))))
    assert "jwks_uri" in error.description


async def test_changed_client_jwks_replaces_the_cached_verifier() -> None:
    provider = await jwt_provider(ES256_KEY)
    assert isinstance(
        await authenticate(provider, form_post(assertion_fields(assertion(ES256_KEY)))), Client
    )
    client = await provider.storage.clients.get_client("rp-1")
    assert client is not None
    client.jwks = OTHER_KEY.jwks()
    await provider.storage.clients.update_client(client)
    await refused(provider, form_post(assertion_fields(assertion(ES256_KEY, jti="j2"))))
    moved = assertion(OTHER_KEY, jti="j3")
    assert isinstance(await authenticate(provider, form_post(assertion_fields(moved))), Client)
