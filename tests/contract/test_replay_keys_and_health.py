"""ReplayGuard (checklist items 62, 169, 202), KeyStore and Storage.ping contracts."""

from __future__ import annotations

import asyncio

import pytest

from backchannel.protocol.ports import DuplicateError, MissingError, Storage
from tests.contract import builders

pytestmark = pytest.mark.anyio
T0 = builders.T0


async def test_item_169_jti_accepted_once_until_expiry(storage: Storage) -> None:
    assert await storage.replay.remember("jti-a", T0 + 60, T0) is True
    assert await storage.replay.remember("jti-a", T0 + 60, T0 + 1) is False
    assert await storage.replay.remember("jti-a", T0 + 120, T0 + 59.9) is False
    assert await storage.replay.remember("jti-b", T0 + 60, T0 + 1) is True


async def test_item_202_jti_reusable_after_expiry(storage: Storage) -> None:
    assert await storage.replay.remember("jti-a", T0 + 60, T0) is True
    assert await storage.replay.remember("jti-a", T0 + 200, T0 + 60) is True
    assert await storage.replay.remember("jti-a", T0 + 300, T0 + 100) is False


async def test_item_202_concurrent_remember_one_wins(storage: Storage) -> None:
    results = await asyncio.gather(
        *(storage.replay.remember("jti-race", T0 + 60, T0) for _ in range(6))
    )
    assert results.count(True) == 1


async def test_keys_add_list_update(storage: Storage) -> None:
    older = builders.signing_key("key-1", created_at=T0)
    newer = builders.signing_key("key-2", alg="RS256", created_at=T0 + 10, sign_from=T0 + 10)
    await storage.keys.add_key(newer)
    await storage.keys.add_key(older)
    assert await storage.keys.list_keys() == [older, newer]
    older.sign_until = T0 + 10
    older.publish_until = T0 + 1000
    await storage.keys.update_key(older)
    assert await storage.keys.list_keys() == [older, newer]


async def test_keys_duplicate_and_missing(storage: Storage) -> None:
    await storage.keys.add_key(builders.signing_key())
    with pytest.raises(DuplicateError):
        await storage.keys.add_key(builders.signing_key())
    with pytest.raises(MissingError):
        await storage.keys.update_key(builders.signing_key("ghost"))


async def test_listed_keys_are_copies(storage: Storage) -> None:
    await storage.keys.add_key(builders.signing_key())
    listed = await storage.keys.list_keys()
    listed[0].public_jwk["d"] = "leaked"
    assert "d" not in (await storage.keys.list_keys())[0].public_jwk


async def test_ping_answers(storage: Storage) -> None:
    assert await storage.ping() is True
