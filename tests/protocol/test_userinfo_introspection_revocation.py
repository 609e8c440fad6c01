"""Userinfo (OIDC §5.3, RFC 6750), introspection (RFC 7662) and revocation (RFC 7009)."""

from __future__ import annotations

from typing import Any

import pytest

from backchannel.protocol import tokens
from backchannel.protocol.endpoints import introspection, revocation, token, userinfo
from backchannel.protocol.errors import OAuthError
from backchannel.protocol.http import HttpRequest, HttpResponse
from backchannel.protocol.provider import Provider
from tests.support.ciba import (
    add_client,
    add_user,
    approved_request,
    ciba_grant,
    form_request,
    outcome_of,
    token_request,
)
from tests.support.clock import FakeClock
from tests.support.provider import ISSUER, make_provider

pytestmark = pytest.mark.anyio


async def issued(
    provider: Provider, scope: tuple[str, ...] = ("openid", "profile", "email")
) -> dict[str, Any]:
    client = await add_client(provider)
    await add_user(provider)
    auth_req_id, _ = await approved_request(provider, client, scope=scope)
    body: dict[str, Any] = (await token.handle(provider, ciba_grant(auth_req_id))).body
    return body


def bearer_get(access_token: str) -> HttpRequest:
    return HttpRequest(
        method="GET",
        url=ISSUER + "/userinfo",
        headers={"authorization": f"Bearer {access_token}"},
    )


def failure(result: HttpResponse | OAuthError) -> tuple[int, str]:
    assert isinstance(result, OAuthError), f"expected an error, got {result}"
    return result.http_status, result.error


def ok_body(result: HttpResponse | OAuthError) -> dict[str, Any]:
    assert isinstance(result, HttpResponse), f"expected 200, got {result}"
    assert result.status == 200
    body: dict[str, Any] = result.body
    return body


# -- userinfo -------------------------------------------------------------------------------


async def test_userinfo_get_with_bearer_header() -> None:
    provider = await make_provider()
    body = ok_body(
        await outcome_of(
            userinfo.handle, provider, bearer_get((await issued(provider))["access_token"])
        )
    )
    assert body["sub"] == "user-1"
    assert body["email"] == "user-1@example.test"
    assert body["name"] == "Ada Lovelace"


async def test_userinfo_releases_only_granted_scopes() -> None:
    provider = await make_provider()
    access = (await issued(provider, scope=("openid",)))["access_token"]
    assert ok_body(await outcome_of(userinfo.handle, provider, bearer_get(access))) == {
        "sub": "user-1"
    }


async def test_userinfo_post_with_form_token_rfc6750_2_2() -> None:
    provider = await make_provider()
    access = (await issued(provider))["access_token"]
    request = form_request("/userinfo", {"access_token": access}, client_id=None)
    assert ok_body(await outcome_of(userinfo.handle, provider, request))["sub"] == "user-1"


async def test_userinfo_get_ignores_a_form_token() -> None:
    provider = await make_provider()
    access = (await issued(provider))["access_token"]
    request = form_request("/userinfo", {"access_token": access}, client_id=None, method="GET")
    assert failure(await outcome_of(userinfo.handle, provider, request)) == (401, "invalid_token")


async def test_userinfo_refuses_two_tokens_at_once() -> None:
    provider = await make_provider()
    access = (await issued(provider))["access_token"]
    request = form_request(
        "/userinfo",
        {"access_token": access},
        client_id=None,
        headers={"authorization": f"Bearer {access}"},
    )
    assert failure(await outcome_of(userinfo.handle, provider, request)) == (400, "invalid_request")


@pytest.mark.parametrize("value", [None, "Bearer not-a-token", "Basic abc"])
async def test_userinfo_without_a_valid_token_is_401_with_a_bearer_challenge(
    value: str | None,
) -> None:
    provider = await make_provider()
    headers = {"authorization": value} if value else {}
    request = HttpRequest(method="GET", url=ISSUER + "/userinfo", headers=headers)
    result = await outcome_of(userinfo.handle, provider, request)
    assert failure(result) == (401, "invalid_token")
    assert isinstance(result, OAuthError)
    assert result.headers["WWW-Authenticate"].startswith("Bearer")


async def test_userinfo_refuses_expired_and_revoked_tokens() -> None:
    clock = FakeClock()
    provider = await make_provider(clock=clock)
    access = (await issued(provider))["access_token"]
    await outcome_of(revocation.handle, provider, form_request("/revoke", {"token": access}))
    assert failure(await outcome_of(userinfo.handle, provider, bearer_get(access))) == (
        401,
        "invalid_token",
    )

    fresh = (await issued_again(provider))["access_token"]
    clock.advance(provider.settings.tokens.access_token_ttl)
    assert failure(await outcome_of(userinfo.handle, provider, bearer_get(fresh))) == (
        401,
        "invalid_token",
    )


async def issued_again(provider: Provider) -> dict[str, Any]:
    client = await provider.storage.clients.get_client("rp-1")
    assert client is not None
    auth_req_id, _ = await approved_request(provider, client)
    body: dict[str, Any] = (await token.handle(provider, ciba_grant(auth_req_id))).body
    return body


async def test_userinfo_needs_the_openid_scope() -> None:
    provider = await make_provider()
    client = await add_client(provider)
    await add_user(provider)
    grant = tokens.Grant(subject="user-1", scope=("profile",), auth_time=1.0)
    issued = await tokens.issue(provider, client, grant, with_refresh_token=False)
    access = issued.tokens.access_token
    assert failure(await outcome_of(userinfo.handle, provider, bearer_get(access))) == (
        403,
        "insufficient_scope",
    )


# -- introspection --------------------------------------------------------------------------


async def introspect(
    provider: Provider, value: str, client_id: str = "rp-1", **extra: str
) -> dict[str, Any]:
    request = form_request("/introspect", {"token": value, **extra}, client_id=client_id)
    result = await outcome_of(introspection.handle, provider, request)
    assert isinstance(result, HttpResponse), result
    assert result.headers["Cache-Control"] == "no-store"
    body: dict[str, Any] = result.body
    return body


async def test_introspection_of_an_active_access_token() -> None:
    provider = await make_provider()
    access = (await issued(provider))["access_token"]
    body = await introspect(provider, access)
    claims = await tokens.read_access_token(provider, access)
    assert body == {
        "active": True,
        "token_type": "Bearer",
        "scope": "openid profile email",
        "client_id": "rp-1",
        "sub": "user-1",
        "exp": claims["exp"],
        "iat": claims["iat"],
        "iss": ISSUER,
        "aud": ISSUER,
        "jti": claims["jti"],
    }


@pytest.mark.parametrize("hint", [None, "refresh_token", "access_token", "something_else"])
async def test_introspection_of_an_active_refresh_token_with_any_hint(hint: str | None) -> None:
    provider = await make_provider()
    refresh = (await issued(provider))["refresh_token"]
    extra = {"token_type_hint": hint} if hint else {}
    body = await introspect(provider, refresh, **extra)
    assert body["active"] is True
    assert body["token_type"] == "refresh_token"
    assert (body["client_id"], body["sub"], body["scope"]) == (
        "rp-1",
        "user-1",
        "openid profile email",
    )
    assert body["exp"] > body["iat"]


async def test_introspection_says_inactive_for_foreign_revoked_rotated_and_unknown() -> None:
    provider = await make_provider()
    first = await issued(provider)
    await add_client(provider, "rp-2")
    assert await introspect(provider, first["access_token"], "rp-2") == {"active": False}
    assert await introspect(provider, first["refresh_token"], "rp-2") == {"active": False}
    assert await introspect(provider, "no-such-token") == {"active": False}

    rotated = first["refresh_token"]
    fields = {"grant_type": "refresh_token", "refresh_token": rotated}
    await token.handle(provider, token_request(fields))
    assert await introspect(provider, rotated) == {"active": False}

    await revocation.handle(provider, form_request("/revoke", {"token": first["access_token"]}))
    assert await introspect(provider, first["access_token"]) == {"active": False}


async def test_introspection_requires_client_auth_and_a_token() -> None:
    provider = await make_provider()
    await add_client(provider)
    unauthenticated = form_request("/introspect", {"token": "x"}, client_id=None)
    assert failure(await outcome_of(introspection.handle, provider, unauthenticated)) == (
        401,
        "invalid_client",
    )
    missing = form_request("/introspect", {})
    assert failure(await outcome_of(introspection.handle, provider, missing)) == (
        400,
        "invalid_request",
    )


# -- revocation -----------------------------------------------------------------------------


async def revoke(
    provider: Provider, value: str, client_id: str = "rp-1", **extra: str
) -> HttpResponse:
    result = await outcome_of(
        revocation.handle,
        provider,
        form_request("/revoke", {"token": value, **extra}, client_id=client_id),
    )
    assert isinstance(result, HttpResponse), result
    assert result.status == 200
    assert result.body is None
    return result


async def test_revoking_a_refresh_token_revokes_its_family() -> None:
    provider = await make_provider()
    first = await issued(provider)
    fields = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    second = (await token.handle(provider, token_request(fields))).body
    await revoke(provider, second["refresh_token"])
    assert await introspect(provider, second["refresh_token"]) == {"active": False}
    family_tokens = [first["refresh_token"], second["refresh_token"]]
    for value in family_tokens:
        stored = await provider.storage.tokens.get_refresh_token(provider.hasher.fast(value))
        assert stored is not None and stored.revoked_at is not None
    refused = await outcome_of(
        token.handle, provider, token_request({**fields, "refresh_token": second["refresh_token"]})
    )
    assert failure(refused) == (400, "invalid_grant")


async def test_revoking_an_access_token_with_an_unknown_hint() -> None:
    provider = await make_provider()
    access = (await issued(provider))["access_token"]
    await revoke(provider, access, token_type_hint="id_token")
    assert await introspect(provider, access) == {"active": False}


async def test_revoking_another_clients_or_unknown_token_is_200_and_changes_nothing() -> None:
    provider = await make_provider()
    first = await issued(provider)
    await add_client(provider, "rp-2")
    await revoke(provider, first["access_token"], "rp-2")
    await revoke(provider, first["refresh_token"], "rp-2")
    await revoke(provider, "no-such-token")
    assert (await introspect(provider, first["access_token"]))["active"] is True
    assert (await introspect(provider, first["refresh_token"]))["active"] is True


async def test_revocation_requires_client_auth() -> None:
    provider = await make_provider()
    await add_client(provider)
    request = form_request("/revoke", {"token": "x"}, client_id=None)
    assert failure(await outcome_of(revocation.handle, provider, request)) == (
        401,
        "invalid_client",
    )
