"""``UserDirectory.find_first``: one lookup for a CIBA login_hint, same answer as trying the
candidates in order (subject, email, phone, username)."""

from __future__ import annotations

import pytest

from backchannel.protocol.ports import Storage, UserLookup
from backchannel.protocol.users import classify_login_hint, find_by_login_hint
from tests.contract import builders

pytestmark = pytest.mark.anyio


async def _add_clashing_users(storage: Storage) -> None:
    """``shared`` is one user's subject, another's username; an email is a third's username."""
    await storage.users.add_user(builders.user("shared", username="by-subject"))
    await storage.users.add_user(builders.user("user-2", username="shared"))
    await storage.users.add_user(
        builders.user("user-3", username="ada@example.test", email="other@example.test")
    )
    await storage.users.add_user(builders.user("user-4", email="ada@example.test"))


async def test_earliest_lookup_wins_whatever_the_row_order(storage: Storage) -> None:
    await _add_clashing_users(storage)
    first: list[UserLookup] = [("subject", "shared"), ("username", "shared")]
    found = await storage.users.find_first(first)
    assert found is not None and found.subject == "shared"
    found = await storage.users.find_first(list(reversed(first)))
    assert found is not None and found.subject == "user-2"


async def test_email_lookup_precedes_username(storage: Storage) -> None:
    await _add_clashing_users(storage)
    found = await find_by_login_hint(storage.users, "Ada@Example.test")
    assert found is not None and found.subject == "user-4"


async def test_find_first_equals_one_by_one(storage: Storage) -> None:
    await _add_clashing_users(storage)
    for hint in ("shared", "by-subject", "ada@example.test", "user-2", "nobody", "+15555550100"):
        expected = None
        for kind, value in classify_login_hint(hint):
            if kind == "subject":
                expected = await storage.users.get_user(value)
            else:
                expected = await storage.users.find_user(kind, value)
            if expected is not None:
                break
        assert await storage.users.find_first(classify_login_hint(hint)) == expected, hint


async def test_no_lookups_or_no_match_is_none(storage: Storage) -> None:
    await _add_clashing_users(storage)
    assert await storage.users.find_first([]) is None
    assert await storage.users.find_first([("phone", "+15555550100")]) is None
