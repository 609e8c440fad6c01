"""The refresh_token grant: rotation, reuse detection, binding to the client and the
original grant (items 134, 135, 138; RFC 6749 §6; RFC 9700 §4.14.2)."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from backchannel.protocol import tokens
from backchannel.protocol.endpoints import token
from backchannel.protocol.errors import OAuthError
from backchannel.protocol.http import HttpResponse
from backchannel.protocol.provider import Provider
from tests.support.ciba import (
    add_client,
    add_user,
    approved_request,
    ciba_grant,
    outcome_of,
    token_request,
)
from tests.support.clock import FakeClock
from tests.support.provider import make_provider

pytestmark = pytest.mark.anyio


async def first_tokens(provider: Provider) -> dict[str, Any]:
    client = await add_client(provider)
    await add_user(provider)
    auth_req_id, _ = await approved_request(provider, client)
    response = await token.handle(provider, ciba_grant(auth_req_id))
    body: dict[str, Any] = response.body
    return body


async def refresh(
    provider: Provider, refresh_token: str, client_id: str = "rp-1", **extra: str
) -> HttpResponse | OAuthError:
    fields = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
    return await outcome_of(token.handle, provider, token_request(fields, client_id))


def body_of(result: HttpResponse | OAuthError) -> dict[str, Any]:
    assert isinstance(result, HttpResponse), f"expected tokens, got {result}"
    assert result.status == 200
    assert result.headers["Cache-Control"] == "no-store"
    body: dict[str, Any] = result.body
    return body


def error_code(result: HttpResponse | OAuthError) -> str:
    assert isinstance(result, OAuthError), f"expected an error, got {result}"
    return result.error


def claims_of(provider: Provider, id_token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(provider.keys.jwks())  # type: ignore[arg-type]
    return dict(jwt.decode(id_token, keys, algorithms=["RS256"]).claims)


async def test_refresh_rotates_the_refresh_token() -> None:
    provider = await make_provider()
    first = await first_tokens(provider)
    second = body_of(await refresh(provider, first["refresh_token"]))
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    third = body_of(await refresh(provider, second["refresh_token"]))
    assert third["refresh_token"] not in (first["refresh_token"], second["refresh_token"])


async def test_reusing_a_rotated_token_revokes_the_whole_family() -> None:
    provider = await make_provider()
    first = await first_tokens(provider)
    second = body_of(await refresh(provider, first["refresh_token"]))
    assert error_code(await refresh(provider, first["refresh_token"])) == "invalid_grant"
    # The legitimate newest token dies with the family: the thief and the client both stop.
    assert error_code(await refresh(provider, second["refresh_token"])) == "invalid_grant"
    stored = await provider.storage.tokens.get_refresh_token(
        provider.hasher.fast(second["refresh_token"])
    )
    assert stored is not None and stored.revoked_at is not None


async def test_item_138_expired_refresh_token_is_invalid_grant() -> None:
    clock = FakeClock()
    provider = await make_provider(clock=clock)
    first = await first_tokens(provider)
    clock.advance(provider.settings.tokens.refresh_token_ttl)
    assert error_code(await refresh(provider, first["refresh_token"])) == "invalid_grant"


async def test_rotation_resets_the_refresh_token_lifetime() -> None:
    clock = FakeClock()
    provider = await make_provider(clock=clock)
    first = await first_tokens(provider)
    ttl = provider.settings.tokens.refresh_token_ttl
    clock.advance(ttl - 10)
    second = body_of(await refresh(provider, first["refresh_token"]))
    clock.advance(20)
    body_of(await refresh(provider, second["refresh_token"]))


async def test_revoked_refresh_token_is_invalid_grant() -> None:
    provider = await make_provider()
    first = await first_tokens(provider)
    token_hash = provider.hasher.fast(first["refresh_token"])
    await provider.storage.tokens.revoke_refresh_token(token_hash, provider.clock.now())
    assert error_code(await refresh(provider, first["refresh_token"])) == "invalid_grant"


async def test_item_134_another_clients_refresh_token_is_invalid_grant_and_harmless() -> None:
    provider = await make_provider()
    first = await first_tokens(provider)
    await add_client(provider, "rp-2")
    assert error_code(await refresh(provider, first["refresh_token"], "rp-2")) == "invalid_grant"
    # The owner's token was neither rotated nor revoked by the foreign attempt.
    body_of(await refresh(provider, first["refresh_token"]))


async def test_scope_may_be_narrowed_and_the_refresh_token_keeps_the_original_scope() -> None:
    provider = await make_provider()
    first = await first_tokens(provider)
    narrowed = body_of(await refresh(provider, first["refresh_token"], scope="openid"))
    assert narrowed["scope"] == "openid"
    access = await tokens.read_access_token(provider, narrowed["access_token"])
    assert access["scope"] == "openid"
    # RFC 6749 §6: the new refresh token covers what the old one did.
    widened_back = body_of(await refresh(provider, narrowed["refresh_token"]))
    assert widened_back["scope"] == "openid profile email"


async def test_scope_may_not_be_widened() -> None:
    provider = await make_provider()
    first = await first_tokens(provider)
    result = await refresh(provider, first["refresh_token"], scope="openid phone")
    assert error_code(result) == "invalid_scope"
    # A refused refresh does not consume the token.
    body_of(await refresh(provider, first["refresh_token"]))


async def test_item_135_refreshed_id_token_keeps_sub_aud_and_auth_time() -> None:
    clock = FakeClock()
    provider = await make_provider(clock=clock)
    first = await first_tokens(provider)
    original = claims_of(provider, first["id_token"])
    clock.advance(600)
    refreshed = claims_of(
        provider, body_of(await refresh(provider, first["refresh_token"]))["id_token"]
    )
    for name in ("iss", "sub", "aud", "auth_time", "acr", "amr"):
        assert refreshed[name] == original[name]
    assert refreshed["iat"] == original["iat"] + 600
    assert "nonce" not in refreshed


async def test_refresh_for_a_removed_user_is_invalid_grant() -> None:
    provider = await make_provider()
    first = await first_tokens(provider)
    await provider.storage.users.remove_user("user-1")
    assert error_code(await refresh(provider, first["refresh_token"])) == "invalid_grant"
