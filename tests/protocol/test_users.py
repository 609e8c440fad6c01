"""The built-in directory: normalisation, login_hint resolution, secrets, claims."""

from __future__ import annotations

from typing import Any

import pytest

from backchannel.protocol.model import User
from backchannel.protocol.secrets import RandomTokens, SecretHasher
from backchannel.protocol.users import (
    InvalidUserInput,
    classify_login_hint,
    edit_user,
    find_by_login_hint,
    new_user,
    normalise,
    set_password,
    set_user_code,
    user_claims,
    verify_password,
)
from backchannel.storage import memory_storage

NOW = 1_800_000_000.0
HASHER = SecretHasher(b"p" * 32)
RANDOM = RandomTokens()


def _user(**extra: Any) -> User:
    values: dict[str, Any] = {"username": "Alice"}
    values.update(extra)
    return new_user(RANDOM, HASHER, NOW, **values)


def test_usernames_and_emails_are_trimmed_nfkc_casefolded() -> None:
    assert normalise("username", "  ÅLICE ") == "ålice"
    assert normalise("username", "ｂｏｂ") == "bob"  # fullwidth letters fold to ASCII (NFKC)
    assert normalise("email", " Alice@Example.COM ") == "alice@example.com"
    assert normalise("username", "Straße") == "strasse"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+1 (555) 555-0100", "+15555550100"),
        ("+44.20.7946.0958", "+442079460958"),
        (" +33 1 23 45 67 89 ", "+33123456789"),
    ],
)
def test_phone_numbers_become_e164(raw: str, expected: str) -> None:
    assert normalise("phone", raw) == expected


@pytest.mark.parametrize(
    "raw", ["5555550100", "+0123456789", "+1 555", "+1555abc0100", "+" + "1" * 16]
)
def test_phone_numbers_that_are_not_e164_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match=r"E\.164"):
        normalise("phone", raw)


def test_login_hint_candidates_in_order() -> None:
    assert classify_login_hint("Alice@Example.com") == [
        ("subject", "Alice@Example.com"),
        ("email", "alice@example.com"),
        ("username", "alice@example.com"),
    ]
    assert classify_login_hint("+1 555 555 0100") == [
        ("subject", "+1 555 555 0100"),
        ("phone", "+15555550100"),
        ("username", "+1 555 555 0100"),
    ]
    assert classify_login_hint("Bob") == [("subject", "Bob"), ("username", "bob")]


def test_new_user_normalises_and_gets_a_random_subject() -> None:
    user = _user(email="Alice@Example.com", phone="+1 555 555 0100", display_name=" Alice A ")
    assert user.subject.startswith("u_")
    assert len(user.subject) > 20
    assert user.subject != _user().subject
    assert user.username == "alice"
    assert user.email == "alice@example.com"
    assert user.phone == "+15555550100"
    assert user.display_name == "Alice A"
    assert user.created_at == NOW
    assert user.password_hash is None


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"phone": "555"}, "phone"),
        ({"username": "  "}, "username"),
        ({"username": "two words"}, "username"),
        ({"username": "u_lookslikeasubject"}, "username"),
        ({"display_name": ""}, "display_name"),
        ({"claims": {"sub": "x"}}, "claims.sub"),
        ({"password": "short"}, "password"),
        ({"user_code": "12"}, "user_code"),
    ],
)
def test_invalid_user_input_names_the_field(extra: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidUserInput) as caught:
        _user(**extra)
    assert str(caught.value).startswith(f"{field}: ")


def test_passwords_and_user_codes_are_argon2_hashed() -> None:
    user = _user(password="correct horse", user_code="4711")
    assert user.password_hash is not None and user.password_hash.startswith("argon2:")
    assert user.user_code_hash is not None and user.user_code_hash.startswith("argon2:")
    assert "correct horse" not in user.password_hash
    assert verify_password(user, HASHER, "correct horse")
    assert not verify_password(user, HASHER, "wrong horse")
    assert HASHER.verify("4711", user.user_code_hash)


def test_set_password_replaces_the_old_one() -> None:
    user = set_password(_user(password="first password"), HASHER, "second password", NOW + 1)
    assert verify_password(user, HASHER, "second password")
    assert not verify_password(user, HASHER, "first password")
    assert user.updated_at == NOW + 1


def test_user_without_password_never_verifies() -> None:
    assert not verify_password(_user(), HASHER, "")


def test_new_user_code_lifts_the_lockout() -> None:
    locked = _user(user_code="1234")
    locked.user_code_failures = 3
    locked.user_code_locked_until = NOW + 900
    fresh = set_user_code(locked, HASHER, "5678", NOW + 2)
    assert fresh.user_code_failures == 0
    assert fresh.user_code_locked_until == 0.0
    assert fresh.user_code_hash is not None and HASHER.verify("5678", fresh.user_code_hash)


def test_edit_user_changes_and_removes_attributes() -> None:
    user = _user(email="a@example.com", phone="+15555550100", display_name="Alice")
    edited = edit_user(user, NOW + 3, email="", display_name="Alice B", username="Alicia")
    assert edited.email is None
    assert edited.phone == "+15555550100"
    assert edited.display_name == "Alice B"
    assert edited.username == "alicia"
    assert edited.subject == user.subject
    with pytest.raises(InvalidUserInput, match=r"^phone: "):
        edit_user(user, NOW, phone="12")


def test_user_claims_follow_the_scopes() -> None:
    user = _user(
        email="a@example.com",
        phone="+15555550100",
        display_name="Alice",
        claims={
            "given_name": "Alice",
            "email_verified": True,
            "address": {"country": "NL"},
            "internal_note": "never released",
        },
    )
    assert user_claims(user, ["openid"]) == {}
    profile = user_claims(user, ["openid", "profile"])
    assert profile["name"] == "Alice"
    assert profile["preferred_username"] == "alice"
    assert profile["given_name"] == "Alice"
    assert profile["updated_at"] == int(NOW)
    assert "email" not in profile
    assert "internal_note" not in profile
    assert user_claims(user, ["email"]) == {"email": "a@example.com", "email_verified": True}
    assert user_claims(user, ["phone"]) == {
        "phone_number": "+15555550100",
        "phone_number_verified": False,
    }
    assert user_claims(user, ["address"]) == {"address": {"country": "NL"}}


def test_user_claims_omit_missing_values() -> None:
    assert user_claims(_user(), ["email", "phone", "address"]) == {}


@pytest.mark.anyio
async def test_find_by_login_hint_tries_subject_email_phone_username() -> None:
    storage = memory_storage()
    alice = _user(email="alice@example.com", phone="+15555550100")
    bob = _user(username="bob")
    await storage.users.add_user(alice)
    await storage.users.add_user(bob)
    for hint in (alice.subject, "ALICE@example.com", "+1 (555) 555-0100", " Alice "):
        found = await find_by_login_hint(storage.users, hint)
        assert found is not None and found.subject == alice.subject, hint
    found_bob = await find_by_login_hint(storage.users, "BOB")
    assert found_bob is not None and found_bob.subject == bob.subject
    assert await find_by_login_hint(storage.users, "carol@example.com") is None
    assert await find_by_login_hint(storage.users, alice.subject.upper()) is None
