"""Signed decisions: what you see is what you approve (item 4), acr/amr (item 5)."""

from __future__ import annotations

from dataclasses import replace

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from backchannel.authenticator.assurance import ACR_DEVICE_KEY, ACR_DEVICE_KEY_UV
from backchannel.device import Consent, DeviceClient, DeviceError
from backchannel.protocol import jose
from backchannel.storage.memory import MemoryStorage
from tests.authenticator.support import World, world
from tests.support.ciba import CIBA_GRANT, basic

pytestmark = pytest.mark.anyio


async def _requested(w: World, **fields: str) -> tuple[str, DeviceClient, Consent]:
    device = await w.device()
    response = await w.bc_authorize(**fields)
    assert response.status_code == 200, response.text
    [consent] = await device.inbox()
    return response.json()["auth_req_id"], device, consent


async def _poll(w: World, auth_req_id: str) -> httpx.Response:
    return await w.http.post(
        "/token",
        data={"grant_type": CIBA_GRANT, "auth_req_id": auth_req_id},
        headers={"authorization": basic(w.client.client_id)},
    )


async def test_approve_gives_tokens_with_device_key_acr_and_amr() -> None:
    w = await world()
    auth_req_id, device, consent = await _requested(w, binding_message="Order 42 ✅ 東京")
    document = consent.document
    assert document["binding_message"] == "Order 42 ✅ 東京"
    assert document["scopes"][1] == {"scope": "profile", "description": "Your name and profile"}
    assert document["client"]["name"] == w.client.name
    assert consent.own_hash() == consent.content_hash
    assert await device.approve(consent) == "approved"
    response = await _poll(w, auth_req_id)
    assert response.status_code == 200, response.text
    claims = jose.peek_claims(response.json()["id_token"])
    assert claims["acr"] == ACR_DEVICE_KEY and claims["amr"] == ["swk"]
    assert await device.inbox() == []


async def test_deny_makes_the_poll_return_access_denied() -> None:
    w = await world()
    auth_req_id, device, consent = await _requested(w)
    assert await device.deny(consent) == "denied"
    response = await _poll(w, auth_req_id)
    assert response.status_code == 400 and response.json()["error"] == "access_denied"


async def test_a_forged_signature_is_refused() -> None:
    w = await world()
    _, device, consent = await _requested(w)
    forger = replace(device, private_key=ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(DeviceError) as refused:
        await forger.approve(consent)
    assert refused.value.status == 403 and "not signed by this device" in refused.value.description


async def test_a_replayed_statement_is_refused() -> None:
    w = await world()
    _, device, consent = await _requested(w)
    statement = device.statement(consent, "deny")
    assert await device.send_statement(consent.request_id, statement) == "denied"
    with pytest.raises(DeviceError) as replayed:
        await device.send_statement(consent.request_id, statement)
    assert replayed.value.status == 400 and "replayed" in replayed.value.description


async def test_a_stale_statement_is_refused() -> None:
    w = await world()
    _, device, consent = await _requested(w)
    old = device.statement(consent, "approve", iat=int(w.clock.now()) - 121)
    with pytest.raises(DeviceError) as stale:
        await device.send_statement(consent.request_id, old)
    assert stale.value.status == 400 and "iat" in stale.value.description


async def test_a_revoked_device_cannot_decide() -> None:
    w = await world()
    _, device, consent = await _requested(w)
    await w.provider.storage.devices.revoke_device(device.device_id, w.clock.now())
    with pytest.raises(DeviceError) as refused:
        await device.approve(consent)
    assert refused.value.status == 401 and "revoked" in refused.value.description


async def test_a_tampered_content_hash_is_refused() -> None:
    w = await world()
    _, device, consent = await _requested(w, binding_message="Pay 10 EUR")
    shown_other = replace(consent, content=consent.content.replace("10 EUR", "1000 EUR"))
    with pytest.raises(DeviceError) as refused:
        await device.approve(shown_other)
    assert refused.value.status == 400 and "content_hash" in refused.value.description


async def test_tampered_stored_content_is_detected() -> None:
    w = await world()
    _, device, consent = await _requested(w, binding_message="Pay 10 EUR")
    storage = w.provider.storage
    assert isinstance(storage, MemoryStorage)
    stored = await storage.devices.get_consent(consent.request_id)
    assert stored is not None
    # What an attacker with database access would do: change the content in place.
    storage.devices._consents[stored.id_hash] = replace(
        stored, content=stored.content.replace("10 EUR", "9999 EUR")
    )
    assert await device.inbox() == []
    tampered = replace(consent, content=consent.content.replace("10 EUR", "9999 EUR"))
    with pytest.raises(DeviceError) as refused:
        await device.approve(tampered)
    assert refused.value.status == 400 and "modified" in refused.value.description


async def test_a_device_of_another_user_cannot_decide() -> None:
    from tests.support.ciba import add_user

    w = await world()
    _, _, consent = await _requested(w)
    w.user = await add_user(w.provider, "user-2")
    stranger = await w.device()
    with pytest.raises(DeviceError) as refused:
        await stranger.approve(consent)
    assert refused.value.status == 404


async def test_a_decided_request_is_a_conflict() -> None:
    w = await world()
    _, device, consent = await _requested(w)
    await device.deny(consent)
    with pytest.raises(DeviceError) as late:
        await device.approve(consent)
    assert late.value.status == 409


async def test_uv_requested_by_acr_values_refuses_approval_without_webauthn() -> None:
    w = await world()
    _, device, consent = await _requested(w, acr_values=ACR_DEVICE_KEY_UV)
    assert consent.requires_user_verification
    with pytest.raises(DeviceError) as refused:
        await device.approve(consent)
    assert refused.value.status == 403 and "user verification" in refused.value.description
    assert await device.deny(consent) == "denied"


async def test_uv_required_by_client_policy() -> None:
    w = await world()
    await w.set_client(require_user_verification=True)
    _, device, consent = await _requested(w)
    assert consent.requires_user_verification
    with pytest.raises(DeviceError) as refused:
        await device.approve(consent)
    assert refused.value.status == 403


async def test_binding_choice_must_pick_the_binding_message() -> None:
    w = await world()
    await w.set_client(binding_code_choice=True)
    missing = await w.bc_authorize()
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    auth_req_id, device, consent = await _requested(w, binding_message="K7Q2")
    assert consent.binding_choices is not None and len(set(consent.binding_choices)) == 3
    assert "K7Q2" in consent.binding_choices
    assert consent.document["binding_message"] is None
    wrong = next(code for code in consent.binding_choices if code != "K7Q2")
    with pytest.raises(DeviceError) as refused:
        await device.approve(consent, binding_choice=wrong)
    assert refused.value.status == 403
    assert await device.approve(consent, binding_choice="K7Q2") == "approved"
    assert (await _poll(w, auth_req_id)).status_code == 200


async def test_item_174_payment_initiation_is_validated_and_returned_with_tokens() -> None:
    w = await world()
    await w.set_client(authorization_details_types=("payment_initiation",))
    payment = {
        "type": "payment_initiation",
        "instructedAmount": {"currency": "EUR", "amount": "123.50"},
        "creditorName": "Merchant A",
        "creditorAccount": {"iban": "DE02100100109307118603"},
        "remittanceInformationUnstructured": "Ref 42",
    }
    for bad in (
        {**payment, "unknown": 1},
        {**payment, "instructedAmount": {"currency": "euro", "amount": "1"}},
        {**payment, "instructedAmount": {"currency": "EUR", "amount": 12}},
        {**payment, "creditorAccount": {"iban": "not-an-iban"}},
    ):
        refused = await w.bc_authorize(authorization_details=orjson.dumps([bad]).decode())
        assert refused.status_code == 400
        assert refused.json()["error"] == "invalid_authorization_details"
    details = orjson.dumps([payment]).decode()
    auth_req_id, device, consent = await _requested(w, authorization_details=details)
    assert consent.document["authorization_details"] == [payment]
    await device.approve(consent)
    tokens = (await _poll(w, auth_req_id)).json()
    assert tokens["authorization_details"] == [payment]
    introspected = await w.http.post(
        "/introspect",
        data={"token": tokens["access_token"]},
        headers={"authorization": basic(w.client.client_id)},
    )
    assert introspected.json()["authorization_details"] == [payment]  # item 178
