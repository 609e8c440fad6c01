"""Web Push to authentication devices (RFC 8030 + RFC 8291 aes128gcm + RFC 8292 VAPID).

The VAPID key pair (P-256) is generated once and kept in ``server_secrets``; its private
half is AES-256-GCM encrypted (``keys.encrypt_private_jwk``) under a key derived from the
server pepper, which is itself derived from the master secret. pywebpush only encrypts the
message (``WebPusher.encode``); the HTTP request goes through ``OutboundClient`` and its
SSRF guard like every other outbound call.

Sending runs in background tasks so a backchannel request does not wait for push services;
``drain`` waits for them (tests, shutdown). Failures are logged, never raised: SSE and the
inbox still reach the device.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence
from urllib.parse import urlsplit

import orjson
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02  # type: ignore[import-untyped]
from pywebpush import WebPusher  # type: ignore[import-untyped]

from backchannel.outbound import OutboundClient, OutboundError
from backchannel.protocol import jose
from backchannel.protocol.keys import decrypt_private_jwk, encrypt_private_jwk
from backchannel.protocol.model import JSON, Device
from backchannel.protocol.provider import Provider
from backchannel.web.logs import get_logger

VAPID_SECRET = "vapid"
VAPID_TTL_SECONDS = 12 * 3600
PUSH_TTL_SECONDS = 120
log = get_logger("backchannel.webpush")


def _encryption_key(provider: Provider) -> bytes:
    return bytes.fromhex(provider.hasher.fast("backchannel vapid key encryption")[5:])


async def vapid_private_jwk(provider: Provider) -> JSON:
    """The VAPID private JWK, created on first use (one per deployment, race-safe)."""
    devices = provider.storage.devices
    stored = await devices.get_secret(VAPID_SECRET)
    if stored is None:
        fresh = jose.generate_private_jwk("ES256", VAPID_SECRET)
        sealed = encrypt_private_jwk(fresh, VAPID_SECRET, _encryption_key(provider))
        if await devices.add_secret(VAPID_SECRET, sealed):
            return fresh
        stored = await devices.get_secret(VAPID_SECRET)
        assert stored is not None
    return decrypt_private_jwk(stored, VAPID_SECRET, _encryption_key(provider))


async def vapid_public_key(provider: Provider) -> str:
    """The applicationServerKey: the uncompressed P-256 point, base64url."""
    jwk = await vapid_private_jwk(provider)
    return jose.b64url(b"\x04" + _b64(jwk["x"]) + _b64(jwk["y"]))


def _private_key(jwk: JSON) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(_b64(jwk["d"]), "big"), ec.SECP256R1())


def _b64(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


class WebPushNotifier:
    """The provider's ``DeviceNotifier``."""

    def __init__(self, provider: Provider, outbound: OutboundClient) -> None:
        self._provider = provider
        self._outbound = outbound
        self._tasks: set[asyncio.Task[None]] = set()

    async def push(self, devices: Sequence[Device], message: JSON) -> None:
        for device in devices:
            task = asyncio.create_task(self.send(device, message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def send(self, device: Device, message: JSON) -> None:
        if device.push is None:
            return
        try:
            status = await self._send(device, message)
        except OutboundError as exc:
            log.warning("web_push_failed", device_id=device.device_id, error=str(exc))
            return
        log.info("web_push_sent", device_id=device.device_id, status=status)

    async def _send(self, device: Device, message: JSON) -> int:
        assert device.push is not None
        subscription = {
            "endpoint": device.push.endpoint,
            "keys": {"p256dh": device.push.p256dh, "auth": device.push.auth},
        }
        encoded = WebPusher(subscription).encode(orjson.dumps(message), "aes128gcm")
        headers = {
            "content-type": "application/octet-stream",
            "content-encoding": "aes128gcm",
            "ttl": str(PUSH_TTL_SECONDS),
            "urgency": "high",
            **await self._vapid_headers(device.push.endpoint),
        }
        timeout = self._provider.settings.outbox.timeout_seconds
        response = await self._outbound.post_bytes(
            device.push.endpoint, encoded["body"], headers=headers, timeout=timeout
        )
        return response.status

    async def _vapid_headers(self, endpoint: str) -> dict[str, str]:
        parts = urlsplit(endpoint)
        vapid = Vapid02(private_key=_private_key(await vapid_private_jwk(self._provider)))
        claims = {
            "aud": f"{parts.scheme}://{parts.netloc}",
            "sub": self._provider.settings.devices.vapid_subject,
            "exp": int(self._provider.clock.now()) + VAPID_TTL_SECONDS,
        }
        signed = vapid.sign(claims)
        return {"authorization": str(signed["Authorization"])}
