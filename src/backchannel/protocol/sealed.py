"""Authenticated encryption of small JSON values that must be kept at rest but never in
plaintext: a ping/push request's auth_req_id and client_notification_token, and the body
(with its bearer token, and for push the live tokens) of an outbox entry.

AES-256-GCM with a random 96-bit nonce. The ``context`` (for example the request's id_hash
or the entry's id) is bound as associated data, so a sealed value copied onto another row
does not open there.
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = "v1."
_NONCE_BYTES = 12


class SealError(Exception):
    """A sealed value does not open with this key and context (tampered, or another key)."""


class Sealer:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the delivery key must be 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def ephemeral(cls) -> Sealer:
        """A sealer with a random key, for providers built without a master secret (tests);
        what it seals opens only in this process."""
        return cls(os.urandom(32))

    def seal(self, value: dict[str, Any], *, context: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, orjson.dumps(value), context.encode())
        return _VERSION + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def open(self, sealed: str, *, context: str) -> dict[str, Any]:
        if not sealed.startswith(_VERSION):
            raise SealError("not a sealed value")
        text = sealed[len(_VERSION) :]
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode())
        except (binascii.Error, InvalidTag, ValueError):
            raise SealError("the sealed value does not open") from None
        value = orjson.loads(plain)
        if not isinstance(value, dict):
            raise SealError("the sealed value is not an object")
        return value
