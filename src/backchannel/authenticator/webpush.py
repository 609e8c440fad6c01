"""Web Push to authentication devices (RFC 8030 + RFC 8291 aes128gcm + RFC 8292 VAPID).

The VAPID key pair (P-256) is generated once and kept in ``server_secrets``; its private
half is AES-256-GCM encrypted (``keys.encrypt_private_jwk``) under a key derived from the
server pepper, which is itself derived from the master secret. pywebpush only encrypts the
message (``WebPusher.encode``); the HTTP request goes through ``OutboundClient`` and its
SSRF guard like every other outbound call.

Each notice is a ``webpush`` outbox entry written with the request (``notify``); the
outbox worker calls ``send_notice`` for it, with the retry policy of every delivery. A 404
or 410 from the push service means the subscription is gone: the entry fails for good and
the device's subscription is dropped.
"""

from __future__ import annotations

import base64
from dataclasses import replace
from urllib.parse import urlsplit

import orjson
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02  # type: ignore[import-untyped]
from pywebpush import WebPusher  # type: ignore[import-untyped]

from backchannel.outbound import OutboundClient, OutboundError, OutboundResponse
from backchannel.protocol import jose
from backchannel.protocol.keys import decrypt_private_jwk, encrypt_private_jwk
from backchannel.protocol.model import JSON
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


async def send_notice(
    provider: Provider, outbound: OutboundClient, body: JSON, *, timeout: float
) -> OutboundResponse:
    """One attempt at a ``webpush`` outbox entry (``notify.notice_payload``): encrypt the
    message for the subscription, sign the VAPID header, POST. ``OutboundError`` when the
    call failed; non-retryable when the subscription's keys are unusable."""
    subscription = body["subscription"]
    try:
        encoded = WebPusher(subscription).encode(orjson.dumps(body["message"]), "aes128gcm")
    except (ValueError, TypeError) as exc:
        raise OutboundError(
            f"the push subscription keys are unusable: {exc}", retryable=False
        ) from exc
    endpoint = str(subscription["endpoint"])
    headers = {
        "content-type": "application/octet-stream",
        "content-encoding": "aes128gcm",
        "ttl": str(PUSH_TTL_SECONDS),
        "urgency": "high",
        **await _vapid_headers(provider, endpoint),
    }
    return await outbound.post_bytes(endpoint, encoded["body"], headers=headers, timeout=timeout)


def subscription_gone(status: int) -> bool:
    """RFC 8030 §7.3: 404 or 410 means the subscription expired or was unsubscribed."""
    return status in (404, 410)


async def drop_subscription(provider: Provider, body: JSON) -> bool:
    """Forget the device's push subscription if it is still the one this notice went to."""
    devices = provider.storage.devices
    device = await devices.get_device(str(body["device_id"]))
    endpoint = body["subscription"]["endpoint"]
    if device is None or device.push is None or device.push.endpoint != endpoint:
        return False
    await devices.update_device(replace(device, push=None))
    log.info("web_push_subscription_dropped", device_id=device.device_id)
    return True


async def _vapid_headers(provider: Provider, endpoint: str) -> dict[str, str]:
    parts = urlsplit(endpoint)
    vapid = Vapid02(private_key=_private_key(await vapid_private_jwk(provider)))
    claims = {
        "aud": f"{parts.scheme}://{parts.netloc}",
        "sub": provider.settings.devices.vapid_subject,
        "exp": int(provider.clock.now()) + VAPID_TTL_SECONDS,
    }
    signed = vapid.sign(claims)
    return {"authorization": str(signed["Authorization"])}
