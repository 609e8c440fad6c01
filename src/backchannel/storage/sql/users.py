"""Users in SQL."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Double, Integer, Select, bindparam, case, delete, or_, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from backchannel.protocol.model import User
from backchannel.protocol.ports import DuplicateError, LookupKind, MissingError, UserLookup
from backchannel.storage.sql.engine import Database, read_engine
from backchannel.storage.sql.kept_reads import NOT_KEPT, copier, kept_reads
from backchannel.storage.sql.prepared import insert_into
from backchannel.storage.sql.tables import users

_BY_SUBJECT = users.c.subject == bindparam("b_subject")
_GET = select(users).where(_BY_SUBJECT)
_FIND = {
    kind: select(users).where(users.c[kind] == bindparam("b_value"))
    for kind in ("username", "email", "phone")
}
_LIST = select(users).order_by(users.c.subject)
_UPDATE = update(users).where(_BY_SUBJECT)
_DELETE = delete(users).where(_BY_SUBJECT)
_RESET = update(users).where(_BY_SUBJECT).values(user_code_failures=0)

# One UPDATE, so concurrent failures are each counted: SET expressions all see the old row.
_REACHES_MAX = users.c.user_code_failures + 1 >= bindparam("b_max", type_=Integer())
_RECORD_FAILURE = (
    update(users)
    .where(_BY_SUBJECT)
    .values(
        user_code_failures=case((_REACHES_MAX, 0), else_=users.c.user_code_failures + 1),
        user_code_locked_until=case(
            (
                _REACHES_MAX,
                bindparam("b_now", type_=Double()) + bindparam("b_lockout", type_=Double()),
            ),
            else_=users.c.user_code_locked_until,
        ),
    )
    .returning(*users.c)
)


@functools.cache
def _find_any(kinds: tuple[str, ...]) -> Select[Any]:
    """``SELECT … WHERE kind0 = :b_0 OR kind1 = :b_1 …``, built once per shape of hint."""
    conditions = [users.c[kind] == bindparam(f"b_{n}") for n, kind in enumerate(kinds)]
    return select(users).where(or_(*conditions))


def user_to_row(user: User) -> dict[str, Any]:
    return {
        "subject": user.subject,
        "username": user.username,
        "email": user.email,
        "phone": user.phone,
        "display_name": user.display_name,
        "claims": user.claims,
        "password_hash": user.password_hash,
        "user_code_hash": user.user_code_hash,
        "user_code_failures": user.user_code_failures,
        "user_code_locked_until": user.user_code_locked_until,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    }


def user_from_row(row: RowMapping) -> User:
    return User(
        subject=row["subject"],
        username=row["username"],
        email=row["email"],
        phone=row["phone"],
        display_name=row["display_name"],
        claims=row["claims"],
        password_hash=row["password_hash"],
        user_code_hash=row["user_code_hash"],
        user_code_failures=row["user_code_failures"],
        user_code_locked_until=row["user_code_locked_until"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class SqlUserDirectory:
    def __init__(self, engine: Database) -> None:
        self._engine = engine
        self._reader = read_engine(engine)
        # The user a bc-authorize names by its hint (see kept_reads).
        self._kept = kept_reads(engine, copier(User, "claims"))

    async def get_user(self, subject: str) -> User | None:
        async with self._reader.connect() as conn:
            row = (await conn.execute(_GET, {"b_subject": subject})).mappings().first()
        return user_from_row(row) if row is not None else None

    async def find_user(self, kind: LookupKind, value: str) -> User | None:
        async with self._reader.connect() as conn:
            row = (await conn.execute(_FIND[kind], {"b_value": value})).mappings().first()
        return user_from_row(row) if row is not None else None

    async def find_first(self, lookups: Sequence[UserLookup]) -> User | None:
        """One SELECT with the lookups OR-ed (each column is unique and indexed), then the
        earliest lookup that matched a row wins."""
        if not lookups:
            return None
        statement = _find_any(tuple(kind for kind, _ in lookups))
        params = {f"b_{n}": value for n, (_, value) in enumerate(lookups)}
        key = tuple(lookups)
        async with self._reader.connect() as conn:
            if (kept := self._kept.get(key)) is not NOT_KEPT:
                return kept
            rows = (await conn.execute(statement, params)).mappings().all()
            user = _first_match(lookups, rows)
            # Hints that match nobody are not kept: they come from outside.
            if user is not None:
                self._kept.keep(key, user)
        return user

    async def add_user(self, user: User) -> None:
        try:
            async with self._kept.forgetting(self._engine.begin()) as conn:
                await conn.execute(insert_into(users), user_to_row(user))
        except IntegrityError:
            raise DuplicateError(
                "a user with this subject, username, email or phone exists"
            ) from None

    async def update_user(self, user: User) -> None:
        values = user_to_row(user)
        del values["subject"]
        try:
            async with self._kept.forgetting(self._engine.begin()) as conn:
                result = await conn.execute(_UPDATE.values(values), {"b_subject": user.subject})
        except IntegrityError:
            raise DuplicateError("another user has this username, email or phone") from None
        if result.rowcount != 1:
            raise MissingError(f"no user {user.subject!r}")

    async def remove_user(self, subject: str) -> bool:
        async with self._kept.forgetting(self._engine.begin()) as conn:
            result = await conn.execute(_DELETE, {"b_subject": subject})
        return result.rowcount == 1

    async def list_users(self) -> list[User]:
        async with self._reader.connect() as conn:
            rows = (await conn.execute(_LIST)).mappings().all()
        return [user_from_row(row) for row in rows]

    async def record_user_code_failure(
        self, subject: str, now: float, max_failures: int, lockout_seconds: float
    ) -> User | None:
        params = {
            "b_subject": subject,
            "b_max": max_failures,
            "b_now": now,
            "b_lockout": lockout_seconds,
        }
        async with self._kept.forgetting(self._engine.begin()) as conn:
            row = (await conn.execute(_RECORD_FAILURE, params)).mappings().first()
        return user_from_row(row) if row is not None else None

    async def reset_user_code_failures(self, subject: str) -> None:
        async with self._kept.forgetting(self._engine.begin()) as conn:
            await conn.execute(_RESET, {"b_subject": subject})


def _first_match(lookups: Sequence[UserLookup], rows: Sequence[Any]) -> User | None:
    """The user of the earliest lookup that matched a row."""
    for kind, value in lookups:
        for row in rows:
            if row[kind] == value:
                return user_from_row(row)
    return None
