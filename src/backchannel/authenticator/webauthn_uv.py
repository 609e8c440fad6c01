"""User verification with WebAuthn (py_webauthn): registering a platform credential on a
device, and an assertion with UV bound to one request and its content.

Challenges are stateless and single use: ``<purpose>.<expires>.<nonce>.<mac>`` where the mac
is the server's keyed hash over the purpose, the device, what the challenge is for (the
request id and content hash of an assertion) and the expiry. Verification recomputes it
from the challenge the browser signed, checks the expiry against the injected clock and
burns it in the replay guard, so no challenge table is needed.

rp_id is ``devices.webauthn_rp_id`` or the issuer's host; the expected origin is the
issuer's origin (scheme, host, port).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import orjson
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticatorAttachment,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from backchannel.protocol.errors import AccessDenied, InvalidRequest
from backchannel.protocol.model import JSON, Device, User, WebAuthnCredential
from backchannel.protocol.provider import Provider

CHALLENGE_SECONDS = 120
_REGISTER = "register"
_ASSERT = "assert"


def rp_id(provider: Provider) -> str:
    return provider.settings.devices.webauthn_rp_id or (urlsplit(provider.issuer).hostname or "")


def origin(provider: Provider) -> str:
    parts = urlsplit(provider.issuer)
    return f"{parts.scheme}://{parts.netloc}"


def registration_options(provider: Provider, device: Device, user: User) -> JSON:
    options = generate_registration_options(
        rp_id=rp_id(provider),
        rp_name="Backchannel",
        user_name=user.username,
        user_id=user.subject.encode("utf-8"),
        user_display_name=user.display_name or user.username,
        challenge=_challenge(provider, _REGISTER, device.device_id),
        authenticator_selection=AuthenticatorSelectionCriteria(
            authenticator_attachment=AuthenticatorAttachment.PLATFORM,
            resident_key=ResidentKeyRequirement.DISCOURAGED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=_descriptors(device),
    )
    return _as_json(options)


async def register(provider: Provider, device: Device, credential: JSON) -> Device:
    """Verify a registration response and add the credential to the device."""
    challenge = await _accept_challenge(provider, credential, _REGISTER, device.device_id)
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=rp_id(provider),
            expected_origin=origin(provider),
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise InvalidRequest(f"WebAuthn registration refused: {str(exc)[:200]}") from None
    added = WebAuthnCredential(
        credential_id=bytes_to_base64url(verified.credential_id),
        public_key=bytes_to_base64url(verified.credential_public_key),
        sign_count=verified.sign_count,
        transports=tuple(_transports(credential)),
    )
    return replace(device, credentials=(*device.credentials, added))


def assertion_options(provider: Provider, device: Device, id_hash: str, content_hash: str) -> JSON:
    if not device.credentials:
        raise InvalidRequest("this device has no WebAuthn credential; register one first")
    options = generate_authentication_options(
        rp_id=rp_id(provider),
        challenge=_challenge(provider, _ASSERT, device.device_id, id_hash, content_hash),
        allow_credentials=_descriptors(device),
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return _as_json(options)


async def verify_assertion(
    provider: Provider, device: Device, id_hash: str, content_hash: str, assertion: JSON
) -> Device:
    """A WebAuthn assertion with user verification for this request and content; returns
    the device with the credential's new sign count. Raises ``AccessDenied`` otherwise."""
    challenge = await _accept_challenge(
        provider, assertion, _ASSERT, device.device_id, id_hash, content_hash
    )
    stored = _credential(device, assertion)
    try:
        verified = verify_authentication_response(
            credential=assertion,
            expected_challenge=challenge,
            expected_rp_id=rp_id(provider),
            expected_origin=origin(provider),
            credential_public_key=_b64decode(stored.public_key),
            credential_current_sign_count=stored.sign_count,
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise AccessDenied(f"WebAuthn assertion refused: {str(exc)[:200]}") from None
    updated = replace(stored, sign_count=verified.new_sign_count)
    credentials = tuple(updated if c is stored else c for c in device.credentials)
    return replace(device, credentials=credentials)


def _challenge(provider: Provider, purpose: str, *bound: str) -> bytes:
    expires = int(provider.clock.now()) + CHALLENGE_SECONDS
    nonce = provider.random.token(16)
    return f"{purpose}.{expires}.{nonce}.{_mac(provider, purpose, expires, nonce, bound)}".encode()


def _mac(provider: Provider, purpose: str, expires: int, nonce: str, bound: tuple[str, ...]) -> str:
    text = "\n".join(("webauthn", purpose, str(expires), nonce, *bound))
    return provider.hasher.fast(text).removeprefix("hmac:")


async def _accept_challenge(
    provider: Provider, credential: JSON, purpose: str, *bound: str
) -> bytes:
    challenge = _signed_challenge(credential)
    try:
        kind, expires_text, nonce, mac = challenge.decode("ascii").split(".")
        expires = int(expires_text)
    except (UnicodeDecodeError, ValueError):
        raise AccessDenied("the WebAuthn challenge is not one of ours") from None
    expected = _mac(provider, purpose, expires, nonce, bound)
    if kind != purpose or not hmac.compare_digest(mac, expected):
        raise AccessDenied("the WebAuthn challenge was issued for something else")
    now = provider.clock.now()
    if expires < now:
        raise AccessDenied("the WebAuthn challenge has expired")
    if not await provider.storage.replay.remember(f"webauthn:{nonce}", expires, now):
        raise AccessDenied("the WebAuthn challenge was already used")
    return challenge


def _signed_challenge(credential: JSON) -> bytes:
    try:
        client_data = orjson.loads(_b64decode(credential["response"]["clientDataJSON"]))
        return _b64decode(client_data["challenge"])
    except (KeyError, TypeError, ValueError, orjson.JSONDecodeError):
        raise InvalidRequest("the WebAuthn response has no readable clientDataJSON") from None


def _credential(device: Device, assertion: JSON) -> WebAuthnCredential:
    presented = assertion.get("rawId") or assertion.get("id")
    for credential in device.credentials:
        if credential.credential_id == presented:
            return credential
    raise AccessDenied("the WebAuthn credential is not registered for this device")


def _descriptors(device: Device) -> list[PublicKeyCredentialDescriptor]:
    return [
        PublicKeyCredentialDescriptor(id=_b64decode(c.credential_id)) for c in device.credentials
    ]


def _transports(credential: JSON) -> list[str]:
    response = credential.get("response")
    transports = response.get("transports") if isinstance(response, dict) else None
    return [t for t in transports if isinstance(t, str)] if isinstance(transports, list) else []


def _as_json(options: Any) -> JSON:
    value: JSON = orjson.loads(options_to_json(options))
    return value


def _b64decode(value: str) -> bytes:
    if not isinstance(value, str):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except binascii.Error:
        raise ValueError("not base64url") from None
