"""The built-in user directory's rules: normalising identifiers, resolving a CIBA
``login_hint``, creating users, their secrets (argon2), and OIDC standard claims.

Subjects are ``u_`` + random; client ids never start with ``u_`` (item 204), so a subject
can not be mistaken for a client.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from backchannel.protocol.model import JSON, User
from backchannel.protocol.ports import LookupKind, TokenSource, UserDirectory, UserLookup
from backchannel.protocol.secrets import SecretHasher

SUBJECT_PREFIX = "u_"
E164 = re.compile(r"\+[1-9]\d{6,14}")
_PHONE_PUNCTUATION = re.compile(r"[\s.\-()]")
_PHONE_LIKE = re.compile(r"\+?[\d\s.\-()]{7,}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
MIN_PASSWORD_LENGTH = 8
MIN_USER_CODE_LENGTH = 4
MAX_SECRET_LENGTH = 256
# OIDC Core §5.4: the claims each scope releases. Fields of User cover the identifiers.
PROFILE_CLAIMS = (
    "family_name",
    "given_name",
    "middle_name",
    "nickname",
    "profile",
    "picture",
    "website",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
)
# Claims derived from User fields (or the token itself): never stored as extra claims.
RESERVED_CLAIMS = frozenset(
    {"sub", "iss", "aud", "exp", "iat", "name", "preferred_username", "email", "phone_number"}
)

HintCandidate = UserLookup


class InvalidUserInput(ValueError):
    """A user attribute is unacceptable; the message starts with the field name."""


def normalise(kind: LookupKind, value: str) -> str:
    """The stored, compared form of a username, email or phone number."""
    if kind == "phone":
        phone = _PHONE_PUNCTUATION.sub("", value)
        if not E164.fullmatch(phone):
            raise ValueError("a phone number must be in E.164 form, such as +15555550100")
        return phone
    return unicodedata.normalize("NFKC", value.strip()).casefold()


def classify_login_hint(hint: str) -> list[HintCandidate]:
    """The lookups to try for a CIBA ``login_hint``, in order."""
    candidates: list[HintCandidate] = [("subject", hint)]
    if "@" in hint:
        candidates.append(("email", normalise("email", hint)))
    phone = _phone_candidate(hint)
    if phone:
        candidates.append(("phone", phone))
    username = normalise("username", hint)
    if username:
        candidates.append(("username", username))
    return candidates


def _phone_candidate(hint: str) -> str | None:
    if not _PHONE_LIKE.fullmatch(hint.strip()):
        return None
    try:
        return normalise("phone", hint)
    except ValueError:
        return None


async def find_by_login_hint(users: UserDirectory, hint: str) -> User | None:
    return await users.find_first(classify_login_hint(hint))


def new_user(
    random: TokenSource,
    hasher: SecretHasher,
    now: float,
    *,
    username: str,
    email: str | None = None,
    phone: str | None = None,
    display_name: str | None = None,
    claims: Mapping[str, Any] | None = None,
    password: str | None = None,
    user_code: str | None = None,
) -> User:
    user = User(
        subject=SUBJECT_PREFIX + random.token(16),
        username=_username(username),
        email=_email(email),
        phone=_phone(phone),
        display_name=_display_name(display_name),
        claims=_claims(claims),
        created_at=now,
        updated_at=now,
    )
    if password is not None:
        user = set_password(user, hasher, password, now)
    if user_code is not None:
        user = set_user_code(user, hasher, user_code, now)
    return user


def edit_user(
    user: User,
    now: float,
    *,
    username: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    display_name: str | None = None,
    claims: Mapping[str, Any] | None = None,
) -> User:
    """A copy with the given attributes changed. ``None`` keeps a value; an empty string
    removes an email, phone or display name. ``claims`` replaces all extra claims."""
    changes: dict[str, Any] = {"updated_at": now}
    if username is not None:
        changes["username"] = _username(username)
    if email is not None:
        changes["email"] = _email(email or None)
    if phone is not None:
        changes["phone"] = _phone(phone or None)
    if display_name is not None:
        changes["display_name"] = _display_name(display_name or None)
    if claims is not None:
        changes["claims"] = _claims(claims)
    return dataclasses.replace(user, **changes)


def set_password(user: User, hasher: SecretHasher, password: str, now: float) -> User:
    _check_secret("password", password, MIN_PASSWORD_LENGTH)
    return dataclasses.replace(user, password_hash=hasher.slow(password), updated_at=now)


def set_user_code(user: User, hasher: SecretHasher, user_code: str, now: float) -> User:
    """A new user code also lifts any lockout from wrong codes."""
    _check_secret("user_code", user_code, MIN_USER_CODE_LENGTH)
    return dataclasses.replace(
        user,
        user_code_hash=hasher.slow(user_code),
        user_code_failures=0,
        user_code_locked_until=0.0,
        updated_at=now,
    )


def verify_password(user: User, hasher: SecretHasher, password: str) -> bool:
    return hasher.verify(password, user.password_hash)


def user_claims(user: User, scopes: Iterable[str]) -> JSON:
    """OIDC standard claims released by ``scopes`` (``sub`` is the caller's to add)."""
    granted = set(scopes)
    claims: JSON = {}
    if "profile" in granted:
        claims.update(_profile_claims(user))
    if "email" in granted and user.email:
        claims["email"] = user.email
        claims["email_verified"] = bool(user.claims.get("email_verified", False))
    if "phone" in granted and user.phone:
        claims["phone_number"] = user.phone
        claims["phone_number_verified"] = bool(user.claims.get("phone_number_verified", False))
    if "address" in granted and "address" in user.claims:
        claims["address"] = user.claims["address"]
    return claims


def _profile_claims(user: User) -> JSON:
    claims: JSON = {"preferred_username": user.username}
    if user.display_name:
        claims["name"] = user.display_name
    claims.update({k: user.claims[k] for k in PROFILE_CLAIMS if k in user.claims})
    claims["updated_at"] = int(user.updated_at)
    return claims


def _username(value: str) -> str:
    username = normalise("username", value)
    if not username:
        raise InvalidUserInput("username: is required")
    if len(username) > 128 or any(c.isspace() or not c.isprintable() for c in username):
        raise InvalidUserInput("username: at most 128 characters, no spaces or control characters")
    if username.startswith(SUBJECT_PREFIX):
        raise InvalidUserInput(f"username: must not start with {SUBJECT_PREFIX!r} (subjects do)")
    return username


def _email(value: str | None) -> str | None:
    if value is None:
        return None
    email = normalise("email", value)
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        raise InvalidUserInput(f"email: {value!r} is not an email address")
    return email


def _phone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return normalise("phone", value)
    except ValueError as exc:
        raise InvalidUserInput(f"phone: {exc}") from None


def _display_name(value: str | None) -> str | None:
    if value is None:
        return None
    name = value.strip()
    if not name or len(name) > 200:
        raise InvalidUserInput("display_name: must be 1 to 200 characters")
    return name


def _claims(claims: Mapping[str, Any] | None) -> JSON:
    result = dict(claims or {})
    for key in result:
        if not isinstance(key, str) or not key:
            raise InvalidUserInput("claims: names must be non-empty strings")
        if key in RESERVED_CLAIMS:
            raise InvalidUserInput(f"claims.{key}: set by the user's own fields, not a claim")
    return result


def _check_secret(field: str, value: str, min_length: int) -> None:
    if not min_length <= len(value) <= MAX_SECRET_LENGTH:
        raise InvalidUserInput(
            f"{field}: must be {min_length} to {MAX_SECRET_LENGTH} characters long"
        )
