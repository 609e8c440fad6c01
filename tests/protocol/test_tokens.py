"""Token issuance: ID tokens (items 128-131), RFC 9068 access tokens (items 139, 140),
opaque hashed refresh tokens, and the push-mode ID token claims (items 119, 120, P10)."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from backchannel.protocol import jose, tokens
from backchannel.protocol.errors import InvalidScope, InvalidToken
from backchannel.protocol.model import Client
from backchannel.protocol.provider import Provider
from tests.support.ciba import add_client
from tests.support.clock import FakeClock
from tests.support.provider import ISSUER, make_provider

pytestmark = pytest.mark.anyio


def decode(provider: Provider, token: str, alg: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify with joserfc directly against the published JWKS, independent of KeyRing."""
    keys = KeySet.import_key_set(provider.keys.jwks())  # type: ignore[arg-type]
    token_obj = jwt.decode(token, keys, algorithms=[alg])
    return dict(token_obj.header), dict(token_obj.claims)


def grant(**overrides: Any) -> tokens.Grant:
    values: dict[str, Any] = {
        "subject": "user-1",
        "scope": ("openid", "profile"),
        "auth_time": 1_800_000_000.0,
        "acr": "urn:acr:2",
        "amr": ("pwd", "otp"),
    }
    values.update(overrides)
    return tokens.Grant(**values)


def signed_id_token(provider: Provider, client: Client, subject: str, **claims: Any) -> str:
    """The ID token ``tokens.issue`` would sign for these claims."""
    values = tokens.id_token_claims(provider, client, subject, **claims)
    return provider.keys.sign(values, alg=client.id_token_signed_response_alg)


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256"])
async def test_item_128_id_token_signed_with_the_clients_alg(alg: str) -> None:
    provider = await make_provider()
    client = await add_client(provider, alg=alg)
    token = signed_id_token(
        provider, client, "user-1", auth_time=1_799_999_990.0, acr="urn:acr:2", amr=("pwd",)
    )
    header, claims = decode(provider, token, alg)
    assert header["alg"] == alg
    assert header["typ"] == "JWT"
    now = int(provider.clock.now())
    assert claims == {
        "iss": ISSUER,
        "sub": "user-1",
        "aud": "rp-1",
        "iat": now,
        "exp": now + provider.settings.tokens.id_token_ttl,
        "auth_time": 1_799_999_990,
        "acr": "urn:acr:2",
        "amr": ["pwd"],
    }


async def test_item_129_acr_and_amr_left_out_when_unknown() -> None:
    provider = await make_provider()
    client = await add_client(provider)
    token = signed_id_token(provider, client, "user-1", auth_time=1.0, acr=None, amr=())
    _, claims = decode(provider, token, "RS256")
    assert "acr" not in claims
    assert "amr" not in claims
    assert "nonce" not in claims  # item 131: CIBA has no nonce


async def test_id_token_extra_claims_are_merged() -> None:
    provider = await make_provider()
    client = await add_client(provider)
    token = signed_id_token(
        provider, client, "user-1", auth_time=1.0, acr=None, amr=(), extra={"at_hash": "abc"}
    )
    assert decode(provider, token, "RS256")[1]["at_hash"] == "abc"


async def test_item_140_access_token_is_a_short_lived_rfc9068_jwt() -> None:
    provider = await make_provider()
    client = await add_client(provider)
    issued = await tokens.issue(
        provider,
        client,
        grant(auth_time=1.0, authorization_details=[{"type": "payment"}]),
        with_refresh_token=False,
    )
    token, jti, expires_in = issued.tokens.access_token, issued.access_jti, issued.tokens.expires_in
    header, claims = decode(provider, token, "ES256")
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    assert expires_in == 300 <= 600
    now = int(provider.clock.now())
    assert claims == {
        "iss": ISSUER,
        "sub": "user-1",
        "aud": ISSUER,
        "client_id": "rp-1",
        "iat": now,
        "exp": now + 300,
        "jti": jti,
        "scope": "openid profile",
        "auth_time": 1,
        "acr": "urn:acr:2",
        "authorization_details": [{"type": "payment"}],
    }
    assert len(jti) >= 21  # 16 random bytes, base64url: 128 bits of entropy


async def test_access_token_alg_follows_settings() -> None:
    provider = await make_provider(tokens={"access_token_alg": "PS256"})
    client = await add_client(provider)
    issued = await tokens.issue(
        provider, client, grant(scope=("openid",), acr=None), with_refresh_token=False
    )
    header, claims = decode(provider, issued.tokens.access_token, "PS256")
    assert header["alg"] == "PS256"
    assert "acr" not in claims and "authorization_details" not in claims


async def _issued(provider: Provider, client: Client) -> tokens.Issuance:
    return await tokens.issue(provider, client, grant(), with_refresh_token=True)


async def test_read_access_token_accepts_a_live_token() -> None:
    provider = await make_provider()
    client = await add_client(provider)
    issuance = await _issued(provider, client)
    claims = await tokens.read_access_token(provider, issuance.tokens.access_token)
    assert claims["jti"] == issuance.access_jti
    assert claims["sub"] == "user-1"


async def test_read_access_token_refuses_expired_tokens() -> None:
    clock = FakeClock()
    provider = await make_provider(clock=clock)
    client = await add_client(provider)
    issuance = await _issued(provider, client)
    clock.advance(provider.settings.tokens.access_token_ttl)
    with pytest.raises(InvalidToken, match="expired"):
        await tokens.read_access_token(provider, issuance.tokens.access_token)


async def test_read_access_token_refuses_revoked_tokens() -> None:
    provider = await make_provider()
    client = await add_client(provider)
    issuance = await _issued(provider, client)
    await tokens.discard(provider, issuance)
    with pytest.raises(InvalidToken, match="revoked"):
        await tokens.read_access_token(provider, issuance.tokens.access_token)


async def test_read_access_token_refuses_an_id_token() -> None:
    provider = await make_provider()
    client = await add_client(provider)
    issuance = await _issued(provider, client)
    with pytest.raises(InvalidToken, match="not an access token"):
        await tokens.read_access_token(provider, issuance.tokens.id_token)


async def test_read_access_token_refuses_foreign_and_garbage_tokens() -> None:
    provider = await make_provider()
    other = await make_provider()
    client = await add_client(other)
    foreign = (await _issued(other, client)).tokens.access_token
    for token in (foreign, "not-a-jwt", foreign + "x"):
        with pytest.raises(InvalidToken):
            await tokens.read_access_token(provider, token)


async def test_refresh_token_is_stored_only_as_its_hash() -> None:
    provider = await make_provider()
    client = await add_client(provider)
    issuance = await _issued(provider, client)
    refresh = issuance.tokens.refresh_token
    record = issuance.refresh_token
    assert refresh is not None and record is not None
    assert record.token_hash == provider.hasher.fast(refresh)
    assert refresh not in repr(record)
    assert len(refresh) >= 43  # 32 random bytes
    assert record.scope == ("openid", "profile")
    assert (record.auth_time, record.acr, record.amr) == (
        1_800_000_000.0,
        "urn:acr:2",
        ("pwd", "otp"),
    )


async def test_issue_without_refresh_token() -> None:
    provider = await make_provider()
    client = await add_client(provider)
    issuance = await tokens.issue(provider, client, grant(), with_refresh_token=False)
    assert issuance.refresh_token is None
    assert "refresh_token" not in issuance.tokens.response()


async def test_token_response_shape_item_96_and_133() -> None:
    provider = await make_provider()
    client = await add_client(provider)
    body = (await _issued(provider, client)).tokens.response()
    assert set(body) == {
        "access_token",
        "token_type",
        "expires_in",
        "id_token",
        "scope",
        "refresh_token",
    }
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_items_119_120_push_id_token_claims(alg: str) -> None:
    provider = await make_provider()
    client = await add_client(provider, alg=alg)
    issuance = await tokens.issue(
        provider, client, grant(), with_refresh_token=True, push_auth_req_id="req-123"
    )
    _, claims = decode(provider, issuance.tokens.id_token, alg)
    assert claims["at_hash"] == jose.half_hash(issuance.tokens.access_token, alg)
    assert claims["urn:openid:params:jwt:claim:auth_req_id"] == "req-123"
    assert issuance.tokens.refresh_token is not None
    assert claims["urn:openid:params:jwt:claim:rt_hash"] == jose.half_hash(
        issuance.tokens.refresh_token, alg
    )


class TickingClock(FakeClock):
    """A clock that moves a second each time it is read."""

    def now(self) -> float:
        self.advance(1)
        return super().now()


async def test_a_token_set_is_issued_at_one_moment() -> None:
    """Both tokens and the refresh record carry the same time, and the access token's jti
    is revoked (on a lost commit) until exactly the access token's exp."""
    clock = TickingClock()
    provider = await make_provider(clock=clock)
    client = await add_client(provider)
    issuance = await tokens.issue(provider, client, grant(), with_refresh_token=True)
    _, id_claims = decode(provider, issuance.tokens.id_token, "RS256")
    _, access_claims = decode(provider, issuance.tokens.access_token, "ES256")
    assert id_claims["iat"] == access_claims["iat"]
    assert issuance.refresh_token is not None
    assert int(issuance.refresh_token.created_at) == access_claims["iat"]
    assert issuance.access_expires_at == access_claims["exp"]


async def test_item_121_poll_id_tokens_carry_no_push_claims() -> None:
    provider = await make_provider()
    client = await add_client(provider)
    _, claims = decode(provider, (await _issued(provider, client)).tokens.id_token, "RS256")
    assert not {"at_hash", tokens.AUTH_REQ_ID_CLAIM, tokens.RT_HASH_CLAIM} & claims.keys()


def test_narrow_scope_keeps_grant_order_and_refuses_widening() -> None:
    granted = ("openid", "profile", "email")
    assert tokens.narrow_scope(granted, None) == granted
    assert tokens.narrow_scope(granted, "email openid") == ("openid", "email")
    with pytest.raises(InvalidScope, match="phone"):
        tokens.narrow_scope(granted, "openid phone")
