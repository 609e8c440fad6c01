"""Signing keys in SQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from backchannel.protocol.model import SigningKey
from backchannel.protocol.ports import DuplicateError, MissingError
from backchannel.storage.sql.engine import Database, read_engine
from backchannel.storage.sql.prepared import insert_into
from backchannel.storage.sql.tables import signing_keys

_LIST = select(signing_keys).order_by(signing_keys.c.created_at, signing_keys.c.kid)
_UPDATE = update(signing_keys).where(signing_keys.c.kid == bindparam("b_kid"))


def key_to_row(key: SigningKey) -> dict[str, Any]:
    return {
        "kid": key.kid,
        "alg": key.alg,
        "public_jwk": key.public_jwk,
        "private_jwk_encrypted": key.private_jwk_encrypted,
        "created_at": key.created_at,
        "sign_from": key.sign_from,
        "sign_until": key.sign_until,
        "publish_until": key.publish_until,
    }


def key_from_row(row: RowMapping) -> SigningKey:
    return SigningKey(
        kid=row["kid"],
        alg=row["alg"],
        public_jwk=row["public_jwk"],
        private_jwk_encrypted=row["private_jwk_encrypted"],
        created_at=row["created_at"],
        sign_from=row["sign_from"],
        sign_until=row["sign_until"],
        publish_until=row["publish_until"],
    )


class SqlKeyStore:
    def __init__(self, engine: Database) -> None:
        self._engine = engine
        self._reader = read_engine(engine)

    async def list_keys(self) -> list[SigningKey]:
        async with self._reader.connect() as conn:
            rows = (await conn.execute(_LIST)).mappings().all()
        return [key_from_row(row) for row in rows]

    async def add_key(self, key: SigningKey) -> None:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert_into(signing_keys), key_to_row(key))
        except IntegrityError:
            raise DuplicateError(f"key {key.kid!r} exists") from None

    async def update_key(self, key: SigningKey) -> None:
        values = key_to_row(key)
        del values["kid"]
        async with self._engine.begin() as conn:
            result = await conn.execute(_UPDATE.values(values), {"b_kid": key.kid})
        if result.rowcount != 1:
            raise MissingError(f"no key {key.kid!r}")
