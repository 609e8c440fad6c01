"""Web Push (issue 6 item 2): every notice is a ``webpush`` outbox entry written with the
request; the outbox worker encrypts it for the subscription and sends it. A local push
endpoint receives the real encrypted message and decrypts it with the subscription's
private key."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass

import http_ece  # type: ignore[import-untyped]
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from prometheus_client import REGISTRY

from backchannel.authenticator.notify import WEBPUSH
from backchannel.authenticator.webpush import vapid_public_key
from backchannel.device import DeviceClient
from backchannel.outbound import OutboundClient
from backchannel.outbox.worker import DeliveryWorker
from backchannel.protocol import jose
from backchannel.protocol.model import OutboxState
from tests.authenticator.support import World, world
from tests.outbox.helpers import no_sleep
from tests.support.receiver import Receiver, Reply, running_receiver

pytestmark = pytest.mark.anyio


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """The browser side of a push subscription: its key pair and auth secret."""

    key: ec.EllipticCurvePrivateKey
    auth_secret: bytes

    @classmethod
    def new(cls) -> Browser:
        return cls(ec.generate_private_key(ec.SECP256R1()), os.urandom(16))

    def subscription(self, endpoint: str) -> dict[str, object]:
        p256dh = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": endpoint,
            "keys": {"p256dh": _b64(p256dh), "auth": _b64(self.auth_secret)},
        }

    def decrypt(self, body: bytes) -> object:
        plain = http_ece.decrypt(
            body, private_key=self.key, auth_secret=self.auth_secret, version="aes128gcm"
        )
        return orjson.loads(plain)


async def _subscribed(w: World, receiver: Receiver, path: str) -> tuple[DeviceClient, Browser]:
    device = await w.device()
    browser = Browser.new()
    response = await w.http.post(
        "/authenticator/api/push/subscription",
        json=browser.subscription(receiver.url(path)),
        headers={"authorization": f"Bearer {device.device_token}"},
    )
    assert response.status_code == 204
    return device, browser


def _worker(w: World) -> DeliveryWorker:
    outbound = OutboundClient(w.provider.settings, pooled=False)
    return DeliveryWorker(w.provider, outbound, sleep=no_sleep, jitter=lambda: 0.0)


def _count(result: str) -> float:
    labels = {"kind": WEBPUSH, "result": result}
    return REGISTRY.get_sample_value("backchannel_deliveries_total", labels) or 0.0


async def test_a_new_request_enqueues_an_encrypted_push_that_decrypts_to_the_contract() -> None:
    w = await world(dev_mode=True)
    succeeded = _count("succeeded")
    with running_receiver() as receiver:
        receiver.on("/push/1", Reply(201))
        device, browser = await _subscribed(w, receiver, "/push/1")
        assert (await w.bc_authorize(binding_message="Table 7")).status_code == 200
        [consent] = await device.inbox()
        [entry] = await w.provider.storage.outbox.list_entries(consent.request_id)
        assert entry.kind == WEBPUSH and entry.url == receiver.url("/push/1")
        assert "Table 7" not in entry.payload  # sealed
        assert receiver.calls == []  # nothing is sent by the request itself
        assert await _worker(w).run_once() == 1
        [call] = await receiver.wait_calls(1, path="/push/1")
    assert call.headers["content-encoding"] == "aes128gcm"
    assert browser.decrypt(call.body) == {
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
    delivered = await w.provider.storage.outbox.get_entry(entry.id)
    assert delivered is not None and delivered.state is OutboxState.DELIVERED
    timeline = await w.provider.storage.requests.timeline(consent.request_id)
    assert [e.kind for e in timeline][-2:] == ["delivery_attempt", "delivered"]
    assert timeline[-1].detail["delivery"] == WEBPUSH
    assert _count("succeeded") == succeeded + 1


async def test_a_failing_push_service_is_retried_and_delivered_on_attempt_2() -> None:
    w = await world(dev_mode=True)
    retried = _count("retried")
    with running_receiver() as receiver:
        receiver.on("/push/2", Reply(500), Reply(201))
        device, browser = await _subscribed(w, receiver, "/push/2")
        assert (await w.bc_authorize(binding_message="Retry me")).status_code == 200
        worker = _worker(w)
        assert await worker.run_once() == 1  # 500: rescheduled (jitter 0: due at once)
        assert await worker.run_once() == 1  # 201
        first, second = await receiver.wait_calls(2, path="/push/2")
    [consent] = await device.inbox()
    [entry] = await w.provider.storage.outbox.list_entries(consent.request_id)
    assert entry.state is OutboxState.DELIVERED and entry.attempts == 2
    timeline = await w.provider.storage.requests.timeline(consent.request_id)
    attempts = [e.detail for e in timeline if e.kind == "delivery_attempt"]
    assert [(a["attempt"], a["status"]) for a in attempts] == [(1, 500), (2, 201)]
    assert timeline[-1].kind == "delivered" and timeline[-1].detail["attempts"] == 2
    # Encrypted afresh for each attempt, both to the same message.
    assert first.body != second.body
    assert browser.decrypt(first.body) == browser.decrypt(second.body)
    assert _count("retried") == retried + 1


@pytest.mark.parametrize("status", [404, 410])
async def test_a_gone_subscription_fails_for_good_and_is_dropped(status: int) -> None:
    w = await world(dev_mode=True)
    with running_receiver() as receiver:
        receiver.on("/push/gone", Reply(status))
        device, _ = await _subscribed(w, receiver, "/push/gone")
        assert (await w.bc_authorize()).status_code == 200
        assert await _worker(w).run_once() == 1
        await receiver.wait_calls(1, path="/push/gone")
        [consent] = await device.inbox()
        [entry] = await w.provider.storage.outbox.list_entries(consent.request_id)
        assert entry.state is OutboxState.FAILED and entry.attempts == 1
        assert entry.last_error == f"HTTP {status}: the push subscription is gone"
        stored = await w.provider.storage.devices.get_device(device.device_id)
        assert stored is not None and stored.push is None
        assert (await w.bc_authorize()).status_code == 200  # no subscription: no entry
        entries = await w.provider.storage.outbox.list_entries()
        assert [e.id for e in entries] == [entry.id]


async def test_item_6_a_suppressed_notice_enqueues_nothing() -> None:
    w = await world(dev_mode=True, devices={"max_notices_per_window": 1})
    with running_receiver() as receiver:
        device, _ = await _subscribed(w, receiver, "/push/3")
        assert (await w.bc_authorize()).status_code == 200
        assert (await w.bc_authorize()).status_code == 200  # beyond the cap: accepted
    consents = await device.inbox()
    assert len(consents) == 2
    per_request = {
        c.request_id: await w.provider.storage.outbox.list_entries(c.request_id) for c in consents
    }
    assert sorted(len(entries) for entries in per_request.values()) == [0, 1]
    [silent] = [request_id for request_id, entries in per_request.items() if not entries]
    timeline = await w.provider.storage.requests.timeline(silent)
    assert timeline[-1].kind == "notice_suppressed"


async def test_the_vapid_key_is_made_once_and_stored_encrypted() -> None:
    w = await world()
    first = await vapid_public_key(w.provider)
    assert first == await vapid_public_key(w.provider)
    sealed = await w.provider.storage.devices.get_secret("vapid")
    assert sealed is not None and sealed.startswith("aesgcm:") and '"d"' not in sealed
    response = await w.http.get("/authenticator/api/push/key")
    assert response.json() == {"public_key": first}
