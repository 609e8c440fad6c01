"""TokenStore contract: refresh rotation and family revocation, access-token revocation."""

from __future__ import annotations

import asyncio

import pytest

from backchannel.protocol.ports import DuplicateError, Storage
from tests.contract import builders

pytestmark = pytest.mark.anyio
T0 = builders.T0


async def test_refresh_token_reads_back_equal(storage: Storage) -> None:
    token = builders.refresh_token()
    await storage.tokens.add_refresh_token(token)
    assert await storage.tokens.get_refresh_token(token.token_hash) == token
    assert await storage.tokens.get_refresh_token("hmac:none") is None
    with pytest.raises(DuplicateError):
        await storage.tokens.add_refresh_token(token)


async def test_rotation_happens_once(storage: Storage) -> None:
    old = builders.refresh_token()
    await storage.tokens.add_refresh_token(old)
    new = builders.refresh_token(created_at=T0 + 60)
    assert await storage.tokens.rotate_refresh_token(old.token_hash, T0 + 60, new) is True
    stored_old = await storage.tokens.get_refresh_token(old.token_hash)
    assert stored_old is not None
    assert stored_old.rotated_at == T0 + 60
    assert await storage.tokens.get_refresh_token(new.token_hash) == new
    again = builders.refresh_token()
    assert await storage.tokens.rotate_refresh_token(old.token_hash, T0 + 61, again) is False
    assert await storage.tokens.get_refresh_token(again.token_hash) is None


async def test_concurrent_rotations_one_wins(storage: Storage) -> None:
    old = builders.refresh_token()
    await storage.tokens.add_refresh_token(old)
    news = [builders.refresh_token() for _ in range(5)]
    results = await asyncio.gather(
        *(storage.tokens.rotate_refresh_token(old.token_hash, T0 + 1, new) for new in news)
    )
    assert results.count(True) == 1


async def test_revoked_or_unknown_token_does_not_rotate(storage: Storage) -> None:
    old = builders.refresh_token()
    await storage.tokens.add_refresh_token(old)
    assert await storage.tokens.revoke_refresh_token(old.token_hash, T0 + 1) is True
    assert await storage.tokens.revoke_refresh_token(old.token_hash, T0 + 2) is False
    new = builders.refresh_token()
    assert await storage.tokens.rotate_refresh_token(old.token_hash, T0 + 3, new) is False
    assert await storage.tokens.rotate_refresh_token("hmac:none", T0 + 3, new) is False
    stored = await storage.tokens.get_refresh_token(old.token_hash)
    assert stored is not None
    assert stored.revoked_at == T0 + 1


async def test_family_revocation_revokes_every_live_member(storage: Storage) -> None:
    family = [builders.refresh_token() for _ in range(3)]
    stranger = builders.refresh_token(family_id="family-2")
    for token in [*family, stranger]:
        await storage.tokens.add_refresh_token(token)
    await storage.tokens.revoke_refresh_token(family[0].token_hash, T0)
    assert await storage.tokens.revoke_family("family-1", T0 + 5) == 2
    assert await storage.tokens.revoke_family("family-1", T0 + 6) == 0
    revoked_at = [
        (await storage.tokens.get_refresh_token(t.token_hash)).revoked_at  # type: ignore[union-attr]
        for t in family
    ]
    assert revoked_at == [T0, T0 + 5, T0 + 5]
    untouched = await storage.tokens.get_refresh_token(stranger.token_hash)
    assert untouched is not None
    assert untouched.revoked_at is None


async def test_access_token_revocation_by_jti(storage: Storage) -> None:
    assert await storage.tokens.is_access_token_revoked("jti-1") is False
    await storage.tokens.revoke_access_token("jti-1", T0 + 300)
    await storage.tokens.revoke_access_token("jti-1", T0 + 300)
    assert await storage.tokens.is_access_token_revoked("jti-1") is True
    assert await storage.tokens.is_access_token_revoked("jti-2") is False
