"""Enrolment by password and by one-time code (issue item 1)."""

from __future__ import annotations

import pytest

from backchannel.device import DeviceClient, DeviceError
from tests.authenticator.support import PASSWORD, world
from tests.support.provider import ISSUER

pytestmark = pytest.mark.anyio


async def test_enrol_with_password_registers_an_active_device() -> None:
    w = await world()
    device = await DeviceClient.enrol_with_password(
        ISSUER, w.user.username, PASSWORD, "Pixel 8", http=w.http, clock=w.clock.now
    )
    stored = await w.provider.storage.devices.get_device(device.device_id)
    assert stored is not None and stored.active and stored.subject == w.user.subject
    assert stored.name == "Pixel 8" and device.device_id.startswith("d_")
    assert stored.token_hash == w.provider.hasher.fast(device.device_token)
    assert "d" not in stored.public_jwk
    assert await device.inbox() == []


async def test_wrong_password_and_bad_codes_get_one_message() -> None:
    w = await world()
    with pytest.raises(DeviceError) as wrong_password:
        await DeviceClient.enrol_with_password(ISSUER, w.user.username, "nope", http=w.http)
    with pytest.raises(DeviceError) as unknown_code:
        await DeviceClient.enrol_with_code(ISSUER, "invented-code", http=w.http)
    assert wrong_password.value.status == unknown_code.value.status == 401
    assert wrong_password.value.error == "invalid_grant"
    assert wrong_password.value.description == unknown_code.value.description


async def test_a_code_works_once_and_not_after_it_expired() -> None:
    from backchannel.authenticator import enrol

    w = await world()
    issued = await enrol.issue_code(w.provider, w.user)
    assert issued.url == f"{ISSUER}/authenticator/#enrol={issued.code}"
    assert issued.expires_at == w.clock.now() + 600
    await DeviceClient.enrol_with_code(ISSUER, issued.code, http=w.http)
    with pytest.raises(DeviceError) as reused:
        await DeviceClient.enrol_with_code(ISSUER, issued.code, http=w.http)
    late = await enrol.issue_code(w.provider, w.user)
    w.clock.advance(601)
    with pytest.raises(DeviceError) as expired:
        await DeviceClient.enrol_with_code(ISSUER, late.code, http=w.http)
    assert reused.value.status == expired.value.status == 401
    assert reused.value.description == expired.value.description


async def test_a_private_or_foreign_key_is_refused() -> None:
    w = await world()
    for jwk in (
        {"kty": "RSA", "n": "x", "e": "AQAB"},
        {"kty": "EC", "crv": "P-256", "x": "bad", "y": "bad"},
        {"kty": "EC", "crv": "P-256", "x": "a", "y": "b", "d": "c"},
    ):
        response = await w.http.post(
            "/authenticator/api/enrol",
            json={"method": "password", "username": w.user.username, "password": PASSWORD,
                  "public_jwk": jwk},
        )  # fmt: skip
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"


async def test_revoked_device_token_is_refused() -> None:
    w = await world()
    device = await w.device()
    assert await w.provider.storage.devices.revoke_device(device.device_id, w.clock.now())
    with pytest.raises(DeviceError) as refused:
        await device.inbox()
    assert refused.value.status == 401 and "revoked" in refused.value.description
