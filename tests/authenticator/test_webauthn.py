"""User verification with WebAuthn through py_webauthn, with a software authenticator
(``webauthn_support``): registration, then an assertion bound to one request and its content
(item 5). The browser side is tested by the app's browser tests."""

from __future__ import annotations

import pytest

from backchannel.authenticator.assurance import ACR_DEVICE_KEY_UV, AMR_DEVICE_KEY_UV
from backchannel.device import DeviceError
from backchannel.protocol import jose
from tests.authenticator.support import world
from tests.authenticator.webauthn_support import device_post, registered
from tests.support.ciba import CIBA_GRANT, basic

pytestmark = pytest.mark.anyio


async def test_approval_with_a_uv_assertion_gives_the_uv_acr_and_amr() -> None:
    w = await world()
    device, authenticator = await registered(w)
    started = await w.bc_authorize(acr_values=ACR_DEVICE_KEY_UV)
    [consent] = await device.inbox()
    options = await device_post(w, device, f"/requests/{consent.request_id}/webauthn/options")
    assertion = authenticator.assert_(options)
    assert await device.approve(consent, webauthn=assertion) == "approved"
    tokens = await w.http.post(
        "/token",
        data={"grant_type": CIBA_GRANT, "auth_req_id": started.json()["auth_req_id"]},
        headers={"authorization": basic(w.client.client_id)},
    )
    claims = jose.peek_claims(tokens.json()["id_token"])
    assert claims["acr"] == ACR_DEVICE_KEY_UV and tuple(claims["amr"]) == AMR_DEVICE_KEY_UV


async def test_an_assertion_without_uv_or_for_another_request_is_refused() -> None:
    w = await world()
    device, authenticator = await registered(w)
    await w.bc_authorize(acr_values=ACR_DEVICE_KEY_UV)
    await w.bc_authorize(acr_values=ACR_DEVICE_KEY_UV)
    first, second = await device.inbox()
    options = await device_post(w, device, f"/requests/{first.request_id}/webauthn/options")
    with pytest.raises(DeviceError) as no_uv:
        await device.approve(first, webauthn=authenticator.assert_(options, flags=0x01))
    assert no_uv.value.status == 403
    options = await device_post(w, device, f"/requests/{first.request_id}/webauthn/options")
    with pytest.raises(DeviceError) as elsewhere:
        await device.approve(second, webauthn=authenticator.assert_(options))
    assert elsewhere.value.status == 403 and "something else" in elsewhere.value.description
