"""``SecretHasher``: the keyed fast hash is HMAC-SHA-256 (RFC 2104) under the pepper, the
stored form a lookup key; ``verify`` accepts only the matching value."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from backchannel.protocol.secrets import RandomTokens, SecretHasher

VALUES = ["", "a", "auth-req-id-0123456789", "é✓ non-ASCII", "x" * 200]


@pytest.mark.parametrize("pepper_size", [32, 63, 64, 65, 200])
@pytest.mark.parametrize("value", VALUES)
def test_fast_is_hmac_sha256_under_the_pepper(pepper_size: int, value: str) -> None:
    """Peppers longer than SHA-256's 64-byte block are hashed first (RFC 2104 §2)."""
    pepper = hashlib.shake_256(b"pepper").digest(pepper_size)
    expected = hmac.new(pepper, value.encode("utf-8"), hashlib.sha256).hexdigest()
    assert SecretHasher(pepper).fast(value) == f"hmac:{expected}"


def test_fast_is_deterministic_and_depends_on_the_pepper() -> None:
    one, other = SecretHasher(b"p" * 32), SecretHasher(b"q" * 32)
    assert one.fast("token") == one.fast("token")
    assert one.fast("token") != other.fast("token")
    assert one.fast("token") != one.fast("token2")


def test_verify_accepts_only_the_hashed_value() -> None:
    hasher = SecretHasher(b"p" * 32)
    stored = hasher.fast("s3cret")
    assert hasher.verify("s3cret", stored)
    assert not hasher.verify("s3cret!", stored)
    assert not hasher.verify("s3cret", None)
    assert not hasher.verify("s3cret", "plain:s3cret")


def test_short_pepper_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        SecretHasher(b"p" * 31)


@pytest.mark.parametrize("nbytes", [12, 16, 20, 32])
def test_random_tokens_are_urlsafe_and_carry_the_asked_entropy(nbytes: int) -> None:
    value = RandomTokens().token(nbytes)
    assert len(value) == -(-nbytes * 4 // 3)  # base64url without padding
    assert set(value) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
