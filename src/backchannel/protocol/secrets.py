"""Hashing of secrets at rest, and the random token source.

- High-entropy values the server generates (auth_req_id, refresh tokens, client secrets it
  issued) are hashed with a fast keyed hash, HMAC-SHA-256 under a server pepper: guessing
  is infeasible, so a slow hash would only cost CPU on every request.
- Values people choose (passwords, user codes, operator-supplied client secrets) use argon2.

Stored forms carry their scheme: ``hmac:<hex>`` or ``argon2:<encoded>``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_ARGON2 = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


class SecretHasher:
    def __init__(self, pepper: bytes) -> None:
        if len(pepper) < 32:
            raise ValueError("the pepper must have at least 32 bytes")
        self._inner, self._outer = _hmac_sha256_pads(pepper)

    def fast(self, value: str) -> str:
        """Keyed hash for server-generated, high-entropy values. Deterministic: usable as
        a lookup key. HMAC-SHA-256 (what ``hmac.new`` gives) continued from the keyed
        states prepared once: a flow hashes several values, re-keying each cost 2.5x."""
        inner = self._inner.copy()
        inner.update(value.encode("utf-8"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return "hmac:" + outer.hexdigest()

    def slow(self, value: str) -> str:
        """argon2id for values chosen by people."""
        return f"argon2:{_ARGON2.hash(value)}"

    def verify(self, value: str, stored: str | None) -> bool:
        """Constant-time check of ``value`` against either stored form."""
        if not stored:
            return False
        scheme, _, encoded = stored.partition(":")
        if scheme == "hmac":
            return hmac.compare_digest(self.fast(value), stored)
        if scheme == "argon2":
            try:
                return _ARGON2.verify(encoded, value)
            except (VerificationError, InvalidHashError):
                return False
        return False


def _hmac_sha256_pads(key: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    """SHA-256 states after absorbing key XOR ipad and key XOR opad (RFC 2104 §2)."""
    block = hashlib.sha256().block_size
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    inner = hashlib.sha256(bytes(byte ^ 0x36 for byte in key))
    outer = hashlib.sha256(bytes(byte ^ 0x5C for byte in key))
    return inner, outer


class RandomTokens:
    """The production token source: ``secrets.token_urlsafe`` (alphabet A-Z a-z 0-9 - _)."""

    def token(self, nbytes: int = 32) -> str:
        return secrets.token_urlsafe(nbytes)
