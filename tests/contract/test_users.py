"""UserDirectory contract, including user-code lockout (checklist item 46)."""

from __future__ import annotations

import asyncio

import pytest

from backchannel.protocol.ports import DuplicateError, MissingError, Storage
from tests.contract import builders

pytestmark = pytest.mark.anyio


async def test_added_user_reads_back_equal(storage: Storage) -> None:
    user = builders.user(phone="+441234567890", user_code_hash="argon2:u")
    await storage.users.add_user(user)
    assert await storage.users.get_user("user-1") == user
    assert await storage.users.get_user("user-2") is None


@pytest.mark.parametrize(
    ("kind", "value"),
    [("username", "ada"), ("email", "ada@example.test"), ("phone", "+441234567890")],
)
async def test_find_user_by_each_kind(storage: Storage, kind: str, value: str) -> None:
    user = builders.user(username="ada", email="ada@example.test", phone="+441234567890")
    await storage.users.add_user(user)
    await storage.users.add_user(builders.user("user-2"))
    assert await storage.users.find_user(kind, value) == user  # type: ignore[arg-type]


async def test_find_user_compares_exactly(storage: Storage) -> None:
    await storage.users.add_user(builders.user(username="ada", email="ada@example.test"))
    assert await storage.users.find_user("username", "ADA") is None
    assert await storage.users.find_user("username", "ad") is None
    assert await storage.users.find_user("email", "Ada@example.test") is None
    assert await storage.users.find_user("phone", "ada") is None


@pytest.mark.parametrize("field", ["subject", "username", "email", "phone"])
async def test_duplicate_unique_attribute_is_refused(storage: Storage, field: str) -> None:
    await storage.users.add_user(builders.user(phone="+4411"))
    other = builders.user("user-2", phone="+4422")
    setattr(other, field, getattr(builders.user(phone="+4411"), field))
    with pytest.raises(DuplicateError):
        await storage.users.add_user(other)
    assert len(await storage.users.list_users()) == 1


async def test_missing_email_and_phone_may_repeat(storage: Storage) -> None:
    await storage.users.add_user(builders.user("a", email=None, phone=None))
    await storage.users.add_user(builders.user("b", email=None, phone=None))
    assert [u.subject for u in await storage.users.list_users()] == ["a", "b"]


async def test_update_user(storage: Storage) -> None:
    await storage.users.add_user(builders.user())
    changed = builders.user(email="new@example.test", claims={"x": [1, 2]}, updated_at=9.0)
    await storage.users.update_user(changed)
    assert await storage.users.get_user("user-1") == changed
    assert await storage.users.find_user("email", "new@example.test") == changed
    assert await storage.users.find_user("email", "user-1@example.test") is None


async def test_update_to_another_users_email_is_refused(storage: Storage) -> None:
    await storage.users.add_user(builders.user("a"))
    await storage.users.add_user(builders.user("b"))
    with pytest.raises(DuplicateError):
        await storage.users.update_user(builders.user("b", email="a@example.test"))
    stored = await storage.users.get_user("b")
    assert stored is not None
    assert stored.email == "b@example.test"


async def test_update_of_missing_user_raises(storage: Storage) -> None:
    with pytest.raises(MissingError):
        await storage.users.update_user(builders.user("ghost"))


async def test_remove_user(storage: Storage) -> None:
    await storage.users.add_user(builders.user())
    assert await storage.users.remove_user("user-1") is True
    assert await storage.users.remove_user("user-1") is False
    assert await storage.users.find_user("username", "name-user-1") is None


async def test_returned_user_is_a_copy(storage: Storage) -> None:
    await storage.users.add_user(builders.user())
    fetched = await storage.users.get_user("user-1")
    assert fetched is not None
    fetched.claims["address"]["country"] = "FR"
    again = await storage.users.get_user("user-1")
    assert again is not None
    assert again.claims["address"]["country"] == "GB"


async def test_item_46_failures_count_then_lock(storage: Storage) -> None:
    await storage.users.add_user(builders.user())
    now = builders.T0
    first = await storage.users.record_user_code_failure("user-1", now, 3, 900)
    second = await storage.users.record_user_code_failure("user-1", now, 3, 900)
    assert first is not None
    assert second is not None
    assert (first.user_code_failures, second.user_code_failures) == (1, 2)
    assert second.user_code_locked_until == 0.0
    third = await storage.users.record_user_code_failure("user-1", now + 1, 3, 900)
    assert third is not None
    assert third.user_code_failures == 0
    assert third.user_code_locked_until == now + 1 + 900
    assert await storage.users.get_user("user-1") == third


async def test_item_46_concurrent_failures_are_all_counted(storage: Storage) -> None:
    await storage.users.add_user(builders.user())
    await asyncio.gather(
        *(storage.users.record_user_code_failure("user-1", builders.T0, 100, 60) for _ in range(8))
    )
    stored = await storage.users.get_user("user-1")
    assert stored is not None
    assert stored.user_code_failures == 8


async def test_failure_for_unknown_user_is_none(storage: Storage) -> None:
    assert await storage.users.record_user_code_failure("ghost", 1.0, 3, 60) is None


async def test_reset_user_code_failures(storage: Storage) -> None:
    await storage.users.add_user(builders.user())
    await storage.users.record_user_code_failure("user-1", builders.T0, 5, 60)
    await storage.users.reset_user_code_failures("user-1")
    stored = await storage.users.get_user("user-1")
    assert stored is not None
    assert stored.user_code_failures == 0
    await storage.users.reset_user_code_failures("ghost")
