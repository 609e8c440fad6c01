"""Refresh tokens and revoked access-token ids in SQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Double, bindparam, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import BindParameter

from backchannel.protocol.model import RefreshToken
from backchannel.protocol.ports import DuplicateError
from backchannel.storage.sql.dialect import upsert_insert
from backchannel.storage.sql.engine import Database, read_engine
from backchannel.storage.sql.prepared import insert_into
from backchannel.storage.sql.tables import refresh_tokens, revoked_access_tokens

rt = refresh_tokens
_NOW: BindParameter[float] = bindparam("b_now", type_=Double())
_BY_HASH = rt.c.token_hash == bindparam("b_hash")
_GET = select(rt).where(_BY_HASH)
_ROTATE = (
    update(rt)
    .where(_BY_HASH, rt.c.rotated_at.is_(None), rt.c.revoked_at.is_(None))
    .values(rotated_at=_NOW)
)
_REVOKE = update(rt).where(_BY_HASH, rt.c.revoked_at.is_(None)).values(revoked_at=_NOW)
_REVOKE_FAMILY = (
    update(rt)
    .where(rt.c.family_id == bindparam("b_family"), rt.c.revoked_at.is_(None))
    .values(revoked_at=_NOW)
)
_IS_REVOKED = select(revoked_access_tokens.c.jti).where(
    revoked_access_tokens.c.jti == bindparam("b_jti")
)


def refresh_token_to_row(token: RefreshToken) -> dict[str, Any]:
    return {
        "token_hash": token.token_hash,
        "family_id": token.family_id,
        "client_id": token.client_id,
        "subject": token.subject,
        "scope": list(token.scope),
        "created_at": token.created_at,
        "expires_at": token.expires_at,
        "auth_time": token.auth_time,
        "acr": token.acr,
        "amr": list(token.amr),
        "authorization_details": token.authorization_details,
        "rotated_at": token.rotated_at,
        "revoked_at": token.revoked_at,
    }


def refresh_token_from_row(row: RowMapping) -> RefreshToken:
    return RefreshToken(
        token_hash=row["token_hash"],
        family_id=row["family_id"],
        client_id=row["client_id"],
        subject=row["subject"],
        scope=tuple(row["scope"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        auth_time=row["auth_time"],
        acr=row["acr"],
        amr=tuple(row["amr"]),
        authorization_details=row["authorization_details"],
        rotated_at=row["rotated_at"],
        revoked_at=row["revoked_at"],
    )


class SqlTokenStore:
    def __init__(self, engine: Database) -> None:
        self._engine = engine
        self._reader = read_engine(engine)
        self._revoke_jti = (
            upsert_insert(engine, revoked_access_tokens)
            .values(jti=bindparam("b_jti"), expires_at=bindparam("b_expires", type_=Double()))
            .on_conflict_do_nothing(index_elements=[revoked_access_tokens.c.jti])
        )

    async def add_refresh_token(self, token: RefreshToken) -> None:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert_into(rt), refresh_token_to_row(token))
        except IntegrityError:
            raise DuplicateError("refresh token exists") from None

    async def get_refresh_token(self, token_hash: str) -> RefreshToken | None:
        async with self._reader.connect() as conn:
            row = (await conn.execute(_GET, {"b_hash": token_hash})).mappings().first()
        return refresh_token_from_row(row) if row is not None else None

    async def rotate_refresh_token(self, old_hash: str, now: float, new: RefreshToken) -> bool:
        try:
            async with self._engine.begin() as conn:
                result = await conn.execute(_ROTATE, {"b_hash": old_hash, "b_now": now})
                if result.rowcount != 1:
                    return False
                await conn.execute(insert_into(rt), refresh_token_to_row(new))
        except IntegrityError:
            raise DuplicateError("refresh token exists") from None
        return True

    async def revoke_refresh_token(self, token_hash: str, now: float) -> bool:
        """True when this call revoked the token (it existed and was not revoked yet)."""
        async with self._engine.begin() as conn:
            result = await conn.execute(_REVOKE, {"b_hash": token_hash, "b_now": now})
        return result.rowcount == 1

    async def revoke_family(self, family_id: str, now: float) -> int:
        async with self._engine.begin() as conn:
            result = await conn.execute(_REVOKE_FAMILY, {"b_family": family_id, "b_now": now})
        return int(result.rowcount)

    async def revoke_access_token(self, jti: str, expires_at: float) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(self._revoke_jti, {"b_jti": jti, "b_expires": expires_at})

    async def is_access_token_revoked(self, jti: str) -> bool:
        async with self._reader.connect() as conn:
            row = (await conn.execute(_IS_REVOKED, {"b_jti": jti})).first()
        return row is not None
