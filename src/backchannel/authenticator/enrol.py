"""Getting a device onto a user: by username and password, or by a one-time enrolment code
(``backchannel devices enrol-code USER``). Every failure gives the same ``invalid_grant``
(401) message, so a caller cannot tell a wrong password from an unknown user, or a used code
from an expired or invented one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backchannel.protocol import jose
from backchannel.protocol.errors import InvalidGrant, InvalidRequest
from backchannel.protocol.events import user_topic
from backchannel.protocol.model import JSON, Device, EnrolmentCode, User
from backchannel.protocol.provider import Provider
from backchannel.protocol.users import normalise, verify_password

DEVICE_ID_PREFIX = "d_"
DEVICE_TOKEN_BYTES = 32
ENROLMENT_CODE_BYTES = 16
MAX_NAME_LENGTH = 64
APP_PATH = "/authenticator/"
_REFUSED = "the credentials or the enrolment code are not valid"


@dataclass(slots=True, frozen=True)
class IssuedCode:
    code: str
    expires_at: float
    url: str


async def issue_code(provider: Provider, user: User) -> IssuedCode:
    """A new single-use code; only its keyed hash is stored. The URL carries it in the
    fragment, so it never reaches a server log."""
    code = provider.random.token(ENROLMENT_CODE_BYTES)
    now = provider.clock.now()
    expires_at = now + provider.settings.devices.enrol_code_ttl
    await provider.storage.devices.add_enrolment_code(
        EnrolmentCode(provider.hasher.fast(code), user.subject, now, expires_at)
    )
    return IssuedCode(code, expires_at, f"{app_url(provider)}#enrol={code}")


def app_url(provider: Provider) -> str:
    return provider.endpoint(APP_PATH)


async def enrol(provider: Provider, body: JSON) -> tuple[Device, str, User]:
    """A new device for the user proven by ``body``. Returns (device, device_token, user)."""
    public_jwk = device_public_jwk(body.get("public_jwk"))
    name = _name(body.get("name"))
    user = await _enrolling_user(provider, body)
    token = provider.random.token(DEVICE_TOKEN_BYTES)
    device = Device(
        device_id=DEVICE_ID_PREFIX + provider.random.token(12),
        subject=user.subject,
        name=name,
        public_jwk=public_jwk,
        token_hash=provider.hasher.fast(token),
        created_at=provider.clock.now(),
    )
    await provider.storage.devices.add_device(device)
    return device, token, user


def enrolment_response(device: Device, token: str, user: User) -> JSON:
    return {
        "device_id": device.device_id,
        "device_token": token,
        "user": {"username": user.username, "display_name": user.display_name},
    }


def device_public_jwk(value: Any) -> JSON:
    """A public EC P-256 JWK, reduced to its public members."""
    if not isinstance(value, dict) or value.get("kty") != "EC" or value.get("crv") != "P-256":
        raise InvalidRequest("public_jwk must be a public EC P-256 key")
    if "d" in value or not isinstance(value.get("x"), str) or not isinstance(value.get("y"), str):
        raise InvalidRequest("public_jwk must be a public EC P-256 key")
    jwk = {"kty": "EC", "crv": "P-256", "x": value["x"], "y": value["y"]}
    try:
        jose.Verifier({"keys": [jwk]})
    except jose.JoseError:
        raise InvalidRequest("public_jwk is not a usable P-256 key") from None
    return jwk


def _name(value: Any) -> str:
    if value is None or value == "":
        return "Authenticator"
    if not isinstance(value, str) or len(value) > MAX_NAME_LENGTH:
        raise InvalidRequest(f"name must be a string of at most {MAX_NAME_LENGTH} characters")
    return value.strip() or "Authenticator"


async def _enrolling_user(provider: Provider, body: JSON) -> User:
    method = body.get("method")
    if method == "password":
        user = await _by_password(provider, body.get("username"), body.get("password"))
    elif method == "code":
        user = await _by_code(provider, body.get("code"))
    else:
        raise InvalidRequest('method must be "password" or "code"')
    if user is None:
        raise InvalidGrant(_REFUSED, status=401)
    return user


async def _by_password(provider: Provider, username: Any, password: Any) -> User | None:
    if not isinstance(username, str) or not isinstance(password, str) or not username:
        return None
    user = await provider.storage.users.find_user("username", normalise("username", username))
    if user is None or not verify_password(user, provider.hasher, password):
        return None
    return user


async def _by_code(provider: Provider, code: Any) -> User | None:
    if not isinstance(code, str) or not code or len(code) > 200:
        return None
    used = await provider.storage.devices.use_enrolment_code(
        provider.hasher.fast(code), provider.clock.now()
    )
    if used is None:
        return None
    return await provider.storage.users.get_user(used.subject)


async def revoke(provider: Provider, device_id: str) -> bool:
    """Revoke a device (its token and key stop working at once) and wake its open event
    streams, which end on that wake-up. False when unknown or already revoked."""
    devices = provider.storage.devices
    if not await devices.revoke_device(device_id, provider.clock.now()):
        return False
    device = await devices.get_device(device_id)
    if device is not None:
        await provider.events.publish(user_topic(device.subject))
    return True
