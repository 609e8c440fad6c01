"""Resolving login_hint, id_token_hint and login_hint_token (items 38-41, 67, 80, 81)."""

from __future__ import annotations

from typing import Any

import pytest

from backchannel.protocol.provider import Provider
from tests.protocol.backchannel_support import (
    HINT_ISSUER,
    HINT_KEY,
    NOW,
    OTHER_KEY,
    ClientKey,
    add_person,
    fails,
    new_provider,
    ok,
    only_request,
    post,
    register,
)
from tests.support.provider import ISSUER

pytestmark = pytest.mark.anyio


async def ready(provider: Provider | None = None) -> Provider:
    provider = provider or await new_provider()
    await register(provider, hint_token_issuers={HINT_ISSUER: HINT_KEY.jwks()})
    await add_person(provider)
    return provider


async def resolves_to_alice(provider: Provider, **hint: str) -> None:
    await ok(provider, post({"scope": "openid", **hint}))
    assert (await only_request(provider)).subject == "u_alice"


# -- login_hint (item 38) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hint", ["u_alice", "alice", "ALICE", "Alice@Example.test", "+1 555 555 0100", "+15555550100"]
)
async def test_item_38_login_hint_by_subject_username_email_or_phone(hint: str) -> None:
    await resolves_to_alice(await ready(), login_hint=hint)


async def test_items_67_81_unknown_login_hint_is_unknown_user_id() -> None:
    await fails(await ready(), post({"scope": "openid", "login_hint": "bob"}), "unknown_user_id")


# -- id_token_hint (items 40, 41) ----------------------------------------------------------------


def id_token(provider: Provider, alg: str = "RS256", **changes: Any) -> str:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "u_alice",
        "aud": "rp-1",
        "iat": int(NOW) - 60,
        "exp": int(NOW) + 240,
    }
    claims.update(changes)
    return provider.keys.sign({k: v for k, v in claims.items() if v is not None}, alg)


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256"])
async def test_item_40_id_token_hint_signed_by_us(alg: str) -> None:
    provider = await ready()
    await resolves_to_alice(provider, id_token_hint=id_token(provider, alg))


async def test_item_41_expired_id_token_hint_is_accepted() -> None:
    provider = await ready()
    hint = id_token(provider, iat=int(NOW) - 86400, exp=int(NOW) - 80000)
    await resolves_to_alice(provider, id_token_hint=hint)


async def test_item_41_aud_list_containing_the_client_is_accepted() -> None:
    provider = await ready()
    await resolves_to_alice(provider, id_token_hint=id_token(provider, aud=["x", "rp-1"]))


@pytest.mark.parametrize(
    "changes",
    [{"iss": "https://evil.test"}, {"aud": "rp-2"}, {"aud": ["rp-2"]}, {"aud": None}],
    ids=["iss", "aud", "aud-list", "no-aud"],
)
async def test_item_41_id_token_hint_for_another_op_or_client_is_invalid_request(
    changes: dict[str, Any],
) -> None:
    provider = await ready()
    hint = id_token(provider, **changes)
    await fails(provider, post({"scope": "openid", "id_token_hint": hint}), "invalid_request")


@pytest.mark.parametrize("hint", ["garbage", "a.b.c", "x.y.z.v.w"])
async def test_malformed_id_token_hint_is_invalid_request(hint: str) -> None:
    provider = await ready()
    await fails(provider, post({"scope": "openid", "id_token_hint": hint}), "invalid_request")


async def test_id_token_hint_signed_by_someone_else_is_invalid_request() -> None:
    provider = await ready()
    forged = OTHER_KEY.sign({"iss": ISSUER, "sub": "u_alice", "aud": "rp-1"})
    await fails(provider, post({"scope": "openid", "id_token_hint": forged}), "invalid_request")


async def test_item_81_id_token_hint_for_an_unknown_subject_is_unknown_user_id() -> None:
    provider = await ready()
    hint = id_token(provider, sub="u_gone")
    await fails(provider, post({"scope": "openid", "id_token_hint": hint}), "unknown_user_id")


# -- login_hint_token (items 39, 80) ---------------------------------------------------------------


def hint_token(key: ClientKey = HINT_KEY, **claims: Any) -> str:
    body: dict[str, Any] = {"iss": HINT_ISSUER, "exp": int(NOW) + 300, **claims}
    return key.sign({k: v for k, v in body.items() if v is not None})


@pytest.mark.parametrize(
    "subject",
    [
        {"sub": "u_alice"},
        {"sub_id": {"format": "email", "email": "ALICE@example.test"}},
        {"sub_id": {"format": "phone_number", "phone_number": "+15555550100"}},
        {"sub_id": {"format": "iss_sub", "iss": ISSUER, "sub": "u_alice"}},
        {"sub_id": {"format": "opaque", "id": "u_alice"}},
    ],
    ids=["sub", "email", "phone", "iss_sub", "opaque"],
)
async def test_item_39_login_hint_token_names_the_user(subject: dict[str, Any]) -> None:
    await resolves_to_alice(await ready(), login_hint_token=hint_token(**subject))


async def test_item_39_login_hint_token_without_exp_is_accepted() -> None:
    await resolves_to_alice(await ready(), login_hint_token=hint_token(exp=None, sub="u_alice"))


async def test_item_80_expired_login_hint_token() -> None:
    provider = await ready()
    skew = provider.settings.ciba.clock_skew_seconds
    token = hint_token(exp=int(NOW) - skew, sub="u_alice")
    await fails(
        provider, post({"scope": "openid", "login_hint_token": token}), "expired_login_hint_token"
    )


@pytest.mark.parametrize(
    "subject",
    [
        {"sub": "u_nobody"},
        {"sub_id": {"format": "email", "email": "bob@example.test"}},
        {"sub_id": {"format": "phone_number", "phone_number": "not a phone"}},
        {"sub_id": {"format": "iss_sub", "iss": "https://other.test", "sub": "u_alice"}},
        {"sub_id": {"format": "did", "url": "did:example:1"}},
    ],
    ids=["unknown-sub", "unknown-email", "bad-phone", "foreign-iss_sub", "unsupported-format"],
)
async def test_item_81_login_hint_token_naming_nobody_is_unknown_user_id(
    subject: dict[str, Any],
) -> None:
    provider = await ready()
    token = hint_token(**subject)
    await fails(provider, post({"scope": "openid", "login_hint_token": token}), "unknown_user_id")


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        hint_token(OTHER_KEY, sub="u_alice"),
        hint_token(iss="https://untrusted.test", sub="u_alice"),
        hint_token(),
        hint_token(sub_id="u_alice"),
    ],
    ids=["garbage", "bad-signature", "untrusted-issuer", "no-subject", "sub_id-not-object"],
)
async def test_invalid_login_hint_token_is_invalid_request(token: str) -> None:
    provider = await ready()
    await fails(provider, post({"scope": "openid", "login_hint_token": token}), "invalid_request")
