"""Clients in SQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from backchannel.protocol.model import AuthMethod, Client, DeliveryMode
from backchannel.protocol.ports import DuplicateError, MissingError
from backchannel.storage.sql.engine import Database, read_engine
from backchannel.storage.sql.kept_reads import NOT_KEPT, copier, kept_reads
from backchannel.storage.sql.prepared import insert_into
from backchannel.storage.sql.tables import clients

_GET = select(clients).where(clients.c.client_id == bindparam("b_client_id"))
_LIST = select(clients).order_by(clients.c.client_id)
_UPDATE = update(clients).where(clients.c.client_id == bindparam("b_client_id"))
_DELETE = delete(clients).where(clients.c.client_id == bindparam("b_client_id"))


def client_to_row(client: Client) -> dict[str, Any]:
    return {
        "client_id": client.client_id,
        "name": client.name,
        "token_endpoint_auth_method": client.token_endpoint_auth_method.value,
        "secret_hash": client.secret_hash,
        "delivery_mode": client.delivery_mode.value,
        "notification_endpoint": client.notification_endpoint,
        "logo_uri": client.logo_uri,
        "policy_uri": client.policy_uri,
        "jwks": client.jwks,
        "jwks_uri": client.jwks_uri,
        "user_code_parameter": client.user_code_parameter,
        "request_signing_alg": client.request_signing_alg,
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "scopes": list(client.scopes),
        "hint_token_issuers": client.hint_token_issuers,
        "authorization_details_types": list(client.authorization_details_types),
        "created_at": client.created_at,
        "updated_at": client.updated_at,
        "binding_code_choice": client.binding_code_choice,
        "require_user_verification": client.require_user_verification,
    }


def client_from_row(row: RowMapping) -> Client:
    return Client(
        client_id=row["client_id"],
        name=row["name"],
        token_endpoint_auth_method=AuthMethod(row["token_endpoint_auth_method"]),
        secret_hash=row["secret_hash"],
        delivery_mode=DeliveryMode(row["delivery_mode"]),
        notification_endpoint=row["notification_endpoint"],
        logo_uri=row["logo_uri"],
        policy_uri=row["policy_uri"],
        jwks=row["jwks"],
        jwks_uri=row["jwks_uri"],
        user_code_parameter=bool(row["user_code_parameter"]),
        request_signing_alg=row["request_signing_alg"],
        id_token_signed_response_alg=row["id_token_signed_response_alg"],
        scopes=tuple(row["scopes"]),
        hint_token_issuers=row["hint_token_issuers"],
        authorization_details_types=tuple(row["authorization_details_types"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        binding_code_choice=bool(row["binding_code_choice"]),
        require_user_verification=bool(row["require_user_verification"]),
    )


class SqlClientStore:
    def __init__(self, engine: Database) -> None:
        self._engine = engine
        self._reader = read_engine(engine)
        # Looked up by every bc-authorize and token request (see kept_reads).
        self._kept = kept_reads(engine, copier(Client, "jwks", "hint_token_issuers"))

    async def get_client(self, client_id: str) -> Client | None:
        async with self._reader.connect() as conn:
            if (kept := self._kept.get(client_id)) is not NOT_KEPT:
                return kept
            row = (await conn.execute(_GET, {"b_client_id": client_id})).mappings().first()
            if row is None:  # unknown ids are not kept: they cannot fill the cache
                return None
            client = client_from_row(row)
            self._kept.keep(client_id, client)
        return client

    async def add_client(self, client: Client) -> None:
        try:
            async with self._kept.forgetting(self._engine.begin()) as conn:
                await conn.execute(insert_into(clients), client_to_row(client))
        except IntegrityError:
            raise DuplicateError(f"client {client.client_id!r} exists") from None

    async def update_client(self, client: Client) -> None:
        values = client_to_row(client)
        del values["client_id"]
        async with self._kept.forgetting(self._engine.begin()) as conn:
            statement = _UPDATE.values(values)
            result = await conn.execute(statement, {"b_client_id": client.client_id})
        if result.rowcount != 1:
            raise MissingError(f"no client {client.client_id!r}")

    async def remove_client(self, client_id: str) -> bool:
        async with self._kept.forgetting(self._engine.begin()) as conn:
            result = await conn.execute(_DELETE, {"b_client_id": client_id})
        return result.rowcount == 1

    async def list_clients(self) -> list[Client]:
        async with self._reader.connect() as conn:
            rows = (await conn.execute(_LIST)).mappings().all()
        return [client_from_row(row) for row in rows]
