"""A real Provider on real storage (memory by default) for protocol-level tests."""

from __future__ import annotations

from typing import Any

from backchannel.protocol.keys import KeyRing
from backchannel.protocol.ports import Storage
from backchannel.protocol.provider import Provider
from backchannel.protocol.secrets import RandomTokens, SecretHasher
from backchannel.settings import Settings
from backchannel.storage import memory_storage
from tests.support.clock import FakeClock

ISSUER = "https://op.example.test"
TEST_KEY = b"k" * 32
TEST_PEPPER = b"p" * 32


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"issuer": ISSUER, "keys": {"algorithms": ["RS256", "PS256", "ES256"]}}
    values.update(overrides)
    return Settings(**values)


async def make_provider(
    storage: Storage | None = None, clock: FakeClock | None = None, **overrides: Any
) -> Provider:
    """Settings overrides are keyword arguments: ``make_provider(ciba={"interval": 2})``."""
    settings = make_settings(**overrides)
    clock = clock or FakeClock()
    storage = storage or memory_storage()
    keys = KeyRing(storage.keys, clock, TEST_KEY, settings.keys)
    await keys.ensure_keys()
    return Provider(
        settings=settings,
        storage=storage,
        keys=keys,
        hasher=SecretHasher(TEST_PEPPER),
        clock=clock,
        random=RandomTokens(),
    )
