"""Web Push (issue item 2): a real encrypted message reaches a local push endpoint, which
decrypts it with the subscription's private key."""

from __future__ import annotations

import base64
import os

import http_ece  # type: ignore[import-untyped]
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from backchannel.authenticator.webpush import WebPushNotifier, vapid_public_key
from backchannel.outbound import OutboundClient
from backchannel.protocol import jose
from tests.authenticator.support import world
from tests.support.receiver import Reply, running_receiver

pytestmark = pytest.mark.anyio


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def test_a_new_request_sends_an_encrypted_push_that_decrypts_to_the_contract() -> None:
    w = await world(dev_mode=True)
    notifier = WebPushNotifier(w.provider, OutboundClient(w.provider.settings, pooled=False))
    w.provider.device_notifier = notifier
    device = await w.device()
    browser_key = ec.generate_private_key(ec.SECP256R1())
    auth_secret = os.urandom(16)
    p256dh = browser_key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    with running_receiver() as receiver:
        receiver.on("/push/1", Reply(201))
        subscription = {
            "endpoint": receiver.url("/push/1"),
            "keys": {"p256dh": _b64(p256dh), "auth": _b64(auth_secret)},
        }
        response = await w.http.post(
            "/authenticator/api/push/subscription",
            json=subscription,
            headers={"authorization": f"Bearer {device.device_token}"},
        )
        assert response.status_code == 204
        assert (await w.bc_authorize(binding_message="Table 7")).status_code == 200
        await notifier.drain()
        [call] = await receiver.wait_calls(1, path="/push/1")
    assert call.headers["content-encoding"] == "aes128gcm"
    plaintext = http_ece.decrypt(
        call.body, private_key=browser_key, auth_secret=auth_secret, version="aes128gcm"
    )
    [consent] = await device.inbox()
    assert orjson.loads(plaintext) == {
        "type": "request",
        "request_id": consent.request_id,
        "client_name": w.client.name,
        "binding_message": "Table 7",
    }
    scheme, _, params = call.headers["authorization"].partition(" ")
    fields = dict(part.split("=", 1) for part in params.split(","))
    assert scheme == "vapid"
    assert fields["k"] == await vapid_public_key(w.provider)
    point = _unb64(fields["k"])
    vapid_jwk = {"kty": "EC", "crv": "P-256", "x": _b64(point[1:33]), "y": _b64(point[33:])}
    header, claims = jose.Verifier({"keys": [vapid_jwk]}).verify(fields["t"], ["ES256"])
    assert claims["aud"] == receiver.url("/").rstrip("/")
    assert header["alg"] == "ES256"


async def test_the_vapid_key_is_made_once_and_stored_encrypted() -> None:
    w = await world()
    first = await vapid_public_key(w.provider)
    assert first == await vapid_public_key(w.provider)
    sealed = await w.provider.storage.devices.get_secret("vapid")
    assert sealed is not None and sealed.startswith("aesgcm:") and '"d"' not in sealed
    response = await w.http.get("/authenticator/api/push/key")
    assert response.json() == {"public_key": first}
