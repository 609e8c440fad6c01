"""Signed authentication requests (CIBA §7.1.1; items 17, 50-65, P4)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from backchannel.protocol.model import AuthMethod
from backchannel.protocol.provider import Provider
from tests.protocol.backchannel_support import (
    ES256_KEY,
    NOW,
    OTHER_KEY,
    PS256_KEY,
    ClientKey,
    add_person,
    assertion,
    assertion_fields,
    fails,
    new_provider,
    ok,
    only_request,
    post,
    register,
)
from tests.support.ciba import SECRET
from tests.support.provider import ISSUER

pytestmark = pytest.mark.anyio


async def signing_client(alg: str = "ES256", key: ClientKey = ES256_KEY, **fields: Any) -> Provider:
    provider = await new_provider()
    await register(provider, key=key, request_signing_alg=alg, **fields)
    await add_person(provider)
    return provider


def request_claims(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": "rp-1",
        "aud": ISSUER,
        "exp": int(NOW) + 300,
        "iat": int(NOW),
        "nbf": int(NOW),
        "jti": "req-1",
        "scope": "openid email",
        "login_hint": "alice",
        "binding_message": "W4",
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def signed(key: ClientKey = ES256_KEY, /, **changes: Any) -> dict[str, str]:
    return {"request": key.sign(request_claims(**changes))}


async def test_item_50_signed_request_carries_the_parameters() -> None:
    provider = await signing_client()
    await ok(provider, post(signed(acr_values="urn:x")))
    stored = await only_request(provider)
    assert stored.scope == ("openid", "email")
    assert stored.binding_message == "W4"
    assert stored.acr_values == ("urn:x",)


@pytest.mark.parametrize("requested", [60, "60", 60.0])
async def test_items_51_p3_requested_expiry_is_a_number_or_a_string(requested: object) -> None:
    provider = await signing_client()
    response = await ok(provider, post(signed(requested_expiry=requested)))
    assert response.body["expires_in"] == 60


@pytest.mark.parametrize("requested", [0, -1, 1.5, True, [60], "sixty"])
async def test_item_48_bad_requested_expiry_in_a_signed_request(requested: object) -> None:
    provider = await signing_client()
    await fails(provider, post(signed(requested_expiry=requested)), "invalid_request")


async def test_non_string_parameter_claim_is_invalid_request() -> None:
    provider = await signing_client()
    await fails(provider, post(signed(login_hint=["alice"])), "invalid_request")


async def test_authorization_details_may_be_a_json_array_claim() -> None:
    provider = await signing_client(authorization_details_types=("payment_initiation",))
    details = [
        {
            "type": "payment_initiation",
            "instructedAmount": {"currency": "EUR", "amount": "12.00"},
            "creditorName": "Merchant A",
            "creditorAccount": {"iban": "DE02100100109307118603"},
        }
    ]
    await ok(provider, post(signed(authorization_details=details)))
    assert (await only_request(provider)).authorization_details == details


async def test_client_without_a_signing_alg_may_not_send_request() -> None:
    provider = await new_provider()
    await register(provider, key=ES256_KEY)
    await add_person(provider)
    await fails(provider, post(signed()), "invalid_request")


async def test_item_17_alg_must_be_the_registered_one() -> None:
    provider = await signing_client("PS256", PS256_KEY)
    await ok(provider, post(signed(PS256_KEY)))
    es256 = await signing_client("PS256", ES256_KEY)
    description = await fails(es256, post(signed(ES256_KEY, jti="2")), "invalid_request")
    assert "PS256" in description


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: str = "") -> str:
    def segment(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{segment(header)}.{segment(claims)}.{signature}"


@pytest.mark.parametrize("alg", ["none", "HS256"])
async def test_item_55_none_and_hmac_are_refused(alg: str) -> None:
    provider = await signing_client(alg)
    token = _unsigned({"alg": alg}, request_claims(), "" if alg == "none" else "c2ln")
    await fails(provider, post({"request": token}), "invalid_request")


async def test_item_63_jwe_requests_are_refused() -> None:
    provider = await signing_client()
    description = await fails(provider, post({"request": "a.b.c.d.e"}), "invalid_request")
    assert "encrypted" in description


async def test_item_59_signature_from_another_key_is_refused() -> None:
    provider = await signing_client()
    await fails(provider, post(signed(OTHER_KEY)), "invalid_request")


async def test_garbage_request_is_invalid_request() -> None:
    provider = await signing_client()
    await fails(provider, post({"request": "garbage"}), "invalid_request")


@pytest.mark.parametrize("aud", [[ISSUER, "https://other"], ISSUER])
async def test_item_56_aud_containing_the_issuer_is_accepted(aud: object) -> None:
    provider = await signing_client()
    await ok(provider, post(signed(aud=aud)))


@pytest.mark.parametrize("aud", ["https://other", ["https://other"], None, ISSUER + "/token"])
async def test_item_56_aud_without_the_issuer_is_refused(aud: object) -> None:
    provider = await signing_client()
    await fails(provider, post(signed(aud=aud)), "invalid_request")


@pytest.mark.parametrize("iss", ["rp-2", None])
async def test_item_57_iss_must_be_the_client_id(iss: str | None) -> None:
    provider = await signing_client()
    await fails(provider, post(signed(iss=iss)), "invalid_request")


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf", "jti"])
async def test_items_58_p4_exp_iat_nbf_jti_are_required(claim: str) -> None:
    provider = await signing_client()
    description = await fails(provider, post(signed(**{claim: None})), "invalid_request")
    assert claim in description


async def test_item_59_expired_request_is_refused() -> None:
    provider = await signing_client()
    skew = provider.settings.ciba.clock_skew_seconds
    changes = {"exp": int(NOW) - skew, "nbf": int(NOW) - 600, "iat": int(NOW) - 600}
    await fails(provider, post(signed(**changes)), "invalid_request")


@pytest.mark.parametrize("claim", ["nbf", "iat"])
async def test_items_59_61_nbf_and_iat_in_the_future_beyond_skew(claim: str) -> None:
    provider = await signing_client()
    skew = provider.settings.ciba.clock_skew_seconds
    await ok(provider, post(signed(**{claim: int(NOW) + skew, "jti": "within"})))
    beyond = signed(**{claim: int(NOW) + skew + 1, "jti": "beyond"})
    await fails(provider, post(beyond), "invalid_request", stored=1)


async def test_item_60_lifetime_over_an_hour_is_refused() -> None:
    provider = await signing_client()
    await ok(provider, post(signed(nbf=int(NOW), exp=int(NOW) + 3600, jti="hour")))
    too_long = signed(nbf=int(NOW), exp=int(NOW) + 3601, jti="longer")
    description = await fails(provider, post(too_long), "invalid_request", stored=1)
    assert "3600" in description


async def test_item_62_jti_replay_is_refused() -> None:
    provider = await signing_client()
    fields = signed()
    await ok(provider, post(fields))
    description = await fails(provider, post(fields), "invalid_request", stored=1)
    assert "already used" in description


async def test_item_64_sub_equal_to_client_id_is_refused() -> None:
    provider = await signing_client()
    await fails(provider, post(signed(sub="rp-1")), "invalid_request")


async def test_item_64_client_assertion_replayed_as_request_is_refused() -> None:
    provider = await signing_client()
    token = assertion(ES256_KEY, iat=int(NOW), nbf=int(NOW), scope="openid", login_hint="alice")
    await fails(provider, post({"request": token}), "invalid_request")


@pytest.mark.parametrize("outside", ["login_hint", "scope", "binding_message", "requested_expiry"])
async def test_items_53_54_parameters_outside_the_jwt_are_refused(outside: str) -> None:
    provider = await signing_client()
    fields = {**signed(), outside: "openid"}
    description = await fails(provider, post(fields), "invalid_request")
    assert outside in description


async def test_item_30_client_auth_fields_may_sit_beside_request() -> None:
    provider = await new_provider()
    await register(
        provider, method=AuthMethod.CLIENT_SECRET_POST, key=ES256_KEY, request_signing_alg="ES256"
    )
    await add_person(provider)
    fields = {**signed(), "client_id": "rp-1", "client_secret": SECRET}
    await ok(provider, post(fields, client_id=None))


async def test_item_30_private_key_jwt_client_sends_a_signed_request() -> None:
    provider = await new_provider()
    await register(
        provider, method=AuthMethod.PRIVATE_KEY_JWT, key=ES256_KEY, request_signing_alg="ES256"
    )
    await add_person(provider)
    fields = {**signed(), **assertion_fields(assertion(ES256_KEY))}
    await ok(provider, post(fields, client_id=None))


async def test_item_49_unknown_form_parameters_beside_request_are_ignored() -> None:
    provider = await signing_client()
    await ok(provider, post({**signed(), "vendor_extension": "1"}))


async def test_item_66_signed_request_is_checked_before_its_parameters() -> None:
    provider = await signing_client()
    await fails(provider, post(signed(OTHER_KEY, scope="email")), "invalid_request")
