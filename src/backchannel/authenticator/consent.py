"""What the device shows, fixed when the request is created (what you see is what you
approve).

``content`` is a canonical JSON string (orjson, sorted keys) built from the request and its
client: the client's name, logo and policy, the binding message verbatim, the scopes in
plain words, ``authorization_details`` as stored and the ``acr_values``. The device signs
``content_hash`` = base64url(SHA-256(UTF-8 content)). The stored copy carries
``content_mac``, a keyed hash (server pepper) over the request's id_hash and the content, so
content changed in the database later — or moved to another request — is detected before it
is shown or decided on.

Binding choices (client policy ``binding_code_choice``): the content then omits the binding
message, and the device offers three codes of the same shape, one of them the real message;
the user must pick the one the consumption device displays.

This module is framework-free: ``protocol/endpoints/backchannel.py`` calls it.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import orjson

from backchannel.authenticator.assurance import ACR_DEVICE_KEY_UV
from backchannel.protocol.jose import b64url
from backchannel.protocol.model import JSON, AuthRequest, Client, Consent
from backchannel.protocol.provider import Provider

SCOPE_WORDS = {
    "openid": "Confirm it is you",
    "profile": "Your name and profile",
    "email": "Your e-mail address",
    "phone": "Your phone number",
    "address": "Your postal address",
    "offline_access": "Access while you are away",
}
BINDING_CHOICES = 3
_DIGITS = "0123456789"
_UPPER = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_LOWER = "abcdefghjkmnpqrstuvwxyz"


class ConsentTampered(Exception):
    """The stored content does not match its keyed hash."""


@dataclass(slots=True, frozen=True)
class ShownConsent:
    """A consent as the device API sends it (the contract's Consent object)."""

    consent: Consent
    content_hash: str
    expires_at: float
    requires_user_verification: bool

    def body(self) -> JSON:
        choices = self.consent.binding_choices
        return {
            "request_id": self.consent.id_hash,
            "content": self.consent.content,
            "content_hash": self.content_hash,
            "expires_at": int(self.expires_at),
            "requires_user_verification": self.requires_user_verification,
            "binding_choices": list(choices) if choices is not None else None,
        }


def build_content(client: Client, request: AuthRequest) -> str:
    shows_message = not client.binding_code_choice
    document: JSON = {
        "client": {
            "name": client.name,
            "logo_uri": client.logo_uri,
            "policy_uri": client.policy_uri,
        },
        "binding_message": request.binding_message if shows_message else None,
        "scopes": [
            {"scope": scope, "description": SCOPE_WORDS.get(scope, scope)}
            for scope in request.scope
        ],
        "authorization_details": request.authorization_details,
        "acr_values": list(request.acr_values),
    }
    return canonical(document)


def canonical(document: Any) -> str:
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS).decode("utf-8")


def content_hash(content: str) -> str:
    return b64url(hashlib.sha256(content.encode("utf-8")).digest())


def content_mac(provider: Provider, id_hash: str, content: str) -> str:
    return provider.hasher.fast(f"consent\n{id_hash}\n{content}")


def new_consent(provider: Provider, client: Client, request: AuthRequest) -> Consent:
    content = build_content(client, request)
    choices = None
    if client.binding_code_choice and request.binding_message is not None:
        choices = binding_choices(provider, request.binding_message)
    return Consent(
        id_hash=request.id_hash,
        subject=request.subject,
        content=content,
        content_mac=content_mac(provider, request.id_hash, content),
        created_at=request.created_at,
        binding_choices=choices,
    )


def verified(provider: Provider, consent: Consent) -> Consent:
    """The consent, if its content still matches its keyed hash; else ``ConsentTampered``."""
    expected = content_mac(provider, consent.id_hash, consent.content)
    if not hmac.compare_digest(expected, consent.content_mac):
        raise ConsentTampered("the stored consent content was modified")
    return consent


def requires_user_verification(client: Client, request: AuthRequest) -> bool:
    return client.require_user_verification or ACR_DEVICE_KEY_UV in request.acr_values


def shown(consent: Consent, client: Client, request: AuthRequest) -> ShownConsent:
    return ShownConsent(
        consent=consent,
        content_hash=content_hash(consent.content),
        expires_at=request.expires_at,
        requires_user_verification=requires_user_verification(client, request),
    )


def binding_choices(provider: Provider, message: str) -> tuple[str, ...]:
    """The real message and two look-alikes (digits for digits, letters for letters), in
    a random order."""
    choices = [message]
    while len(choices) < BINDING_CHOICES:
        decoy = _look_alike(provider, message)
        if decoy not in choices:
            choices.append(decoy)
    position = _random_bytes(provider, 1)[0] % BINDING_CHOICES
    choices[0], choices[position] = choices[position], choices[0]
    return tuple(choices)


def _look_alike(provider: Provider, message: str) -> str:
    noise = _random_bytes(provider, len(message))
    out = []
    for char, byte in zip(message, noise, strict=True):
        alphabet = _alphabet(char)
        out.append(alphabet[byte % len(alphabet)] if alphabet else char)
    decoy = "".join(out)
    if decoy == message:  # a message without letters or digits: append a marker
        decoy = message + _DIGITS[noise[0] % 10] if noise else message + "1"
    return decoy


def _alphabet(char: str) -> str | None:
    if char.isascii() and char.isdigit():
        return _DIGITS
    if char.isascii() and char.isupper():
        return _UPPER
    if char.isascii() and char.islower():
        return _LOWER
    return None


def _random_bytes(provider: Provider, count: int) -> bytes:
    out = b""
    while len(out) < count:
        out += hashlib.sha256(provider.random.token(32).encode("utf-8")).digest()
    return out[:count]
