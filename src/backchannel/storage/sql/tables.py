"""The schema, as SQLAlchemy Core tables. Migrations (``migrations/versions``) create exactly
these; a test compares the two.

Times are POSIX seconds (Double); tuples, lists and dicts are JSON; enums their string value.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    event,
    text,
)

NAMING_CONVENTION = {
    "pk": "pk_%(table_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "ix": "ix_%(table_name)s_%(column_0_name)s",
}
metadata = MetaData(naming_convention=NAMING_CONVENTION)

# The predicates of the partial indexes on auth_requests, as the queries must spell them.
PENDING_ONLY = text("state = 'pending'")
APPROVED_PUSH_ONLY = text("state = 'approved' AND delivery_mode = 'push'")

# SQLite only auto-increments an INTEGER PRIMARY KEY.
EventId = BigInteger().with_variant(Integer(), "sqlite")


def _json(nullable: bool = False) -> JSON:
    return JSON(none_as_null=True) if nullable else JSON()


clients = Table(
    "clients",
    metadata,
    Column("client_id", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("token_endpoint_auth_method", String, nullable=False),
    Column("secret_hash", String, nullable=True),
    Column("delivery_mode", String, nullable=False),
    Column("notification_endpoint", String, nullable=True),
    Column("logo_uri", String, nullable=True),
    Column("policy_uri", String, nullable=True),
    Column("jwks", _json(nullable=True), nullable=True),
    Column("jwks_uri", String, nullable=True),
    Column("user_code_parameter", Boolean, nullable=False),
    Column("request_signing_alg", String, nullable=True),
    Column("id_token_signed_response_alg", String, nullable=False),
    Column("scopes", _json(), nullable=False),
    Column("hint_token_issuers", _json(), nullable=False),
    Column("authorization_details_types", _json(), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    # Authenticator policy (migration 0003).
    Column("binding_code_choice", Boolean, nullable=False),
    Column("require_user_verification", Boolean, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("subject", String, primary_key=True),
    Column("username", String, nullable=False, unique=True),
    Column("email", String, nullable=True, unique=True),
    Column("phone", String, nullable=True, unique=True),
    Column("display_name", String, nullable=True),
    Column("claims", _json(), nullable=False),
    Column("password_hash", String, nullable=True),
    Column("user_code_hash", String, nullable=True),
    Column("user_code_failures", Integer, nullable=False),
    Column("user_code_locked_until", Double, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
)

auth_requests = Table(
    "auth_requests",
    metadata,
    Column("id_hash", String, primary_key=True),
    Column("client_id", String, nullable=False),
    Column("subject", String, nullable=False),
    Column("scope", _json(), nullable=False),
    Column("delivery_mode", String, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double, nullable=False),
    Column("interval", Integer, nullable=False),
    Column("state", String, nullable=False),
    Column("acr_values", _json(), nullable=False),
    Column("binding_message", String, nullable=True),
    Column("client_notification_token", String, nullable=True),
    # Sealed {"auth_req_id", "client_notification_token"} of a ping/push request (0002).
    Column("delivery_secret", String, nullable=True),
    Column("authorization_details", _json(nullable=True), nullable=True),
    Column("requested_expiry", Integer, nullable=True),
    Column("last_polled_at", Double, nullable=True),
    Column("decided_at", Double, nullable=True),
    Column("auth_time", Double, nullable=True),
    Column("acr", String, nullable=True),
    Column("amr", _json(), nullable=False),
    # Partial indexes (migration 0006): a request is in them only while a query looks for it
    # there, so a decision deletes its entries instead of moving them, and a redeem or a
    # denial of a decided request writes no index page at all. Queries that use them
    # compare ``state`` with the literal of the index (``PENDING_ONLY`` and friends): with
    # a bound value SQLite could not tell that the index holds every matching row.
    # The sweeper's: pending requests past their expiry, per delivery mode.
    Index(
        "ix_auth_requests_pending_mode_expires_at",
        "delivery_mode",
        "expires_at",
        sqlite_where=PENDING_ONLY,
        postgresql_where=PENDING_ONLY,
    ),
    # bc-authorize's cap on a user's pending requests.
    Index(
        "ix_auth_requests_pending_subject_expires_at",
        "subject",
        "expires_at",
        sqlite_where=PENDING_ONLY,
        postgresql_where=PENDING_ONLY,
    ),
    # The sweeper's retry of approved push requests whose tokens never went out.
    Index(
        "ix_auth_requests_approved_push_decided_at",
        "decided_at",
        "id_hash",
        sqlite_where=APPROVED_PUSH_ONLY,
        postgresql_where=APPROVED_PUSH_ONLY,
    ),
    Index("ix_auth_requests_created_at", "created_at"),
)

timeline_events = Table(
    "timeline_events",
    metadata,
    Column("id", EventId, primary_key=True, autoincrement=True),
    Column(
        "id_hash",
        String,
        ForeignKey("auth_requests.id_hash", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("at", Double, nullable=False),
    Column("kind", String, nullable=False),
    Column("detail", _json(), nullable=False),
    Index("ix_timeline_events_id_hash", "id_hash"),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", String, primary_key=True),
    Column("family_id", String, nullable=False),
    Column("client_id", String, nullable=False),
    Column("subject", String, nullable=False),
    Column("scope", _json(), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double, nullable=False),
    Column("auth_time", Double, nullable=False),
    Column("acr", String, nullable=True),
    Column("amr", _json(), nullable=False),
    Column("authorization_details", _json(nullable=True), nullable=True),
    Column("rotated_at", Double, nullable=True),
    Column("revoked_at", Double, nullable=True),
    Index("ix_refresh_tokens_family_id", "family_id"),
)

revoked_access_tokens = Table(
    "revoked_access_tokens",
    metadata,
    Column("jti", String, primary_key=True),
    Column("expires_at", Double, nullable=False),
)

replay_keys = Table(
    "replay_keys",
    metadata,
    Column("key", String, primary_key=True),
    Column("expires_at", Double, nullable=False),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String, primary_key=True),
    Column("alg", String, nullable=False),
    Column("public_jwk", _json(), nullable=False),
    Column("private_jwk_encrypted", String, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("sign_from", Double, nullable=False),
    Column("sign_until", Double, nullable=True),
    Column("publish_until", Double, nullable=True),
)

# One row that SQLite triggers bump on every write to the tables whose reads the SQLite
# stores keep in memory (``kept_reads``): a worker that sees ``PRAGMA data_version`` move
# (someone else committed) reads it to tell whether those tables changed, so another
# worker's auth-request writes do not empty its kept clients, users and devices. Triggers
# fire for plain SQL too. Migration 0007 creates the row and the triggers.
KEPT_TABLES = ("clients", "users", "devices", "device_pauses")
_KEPT_TRIGGER = (
    "CREATE TRIGGER kept_generation_{table}_{name} AFTER {event} ON {table} "
    "BEGIN UPDATE kept_generation SET value = value + 1 WHERE id = 1; END"
)
# Columns whose updates bump no generation: a device's heartbeat (``touch_device``, at
# most once a minute per device) does not make every worker drop its kept reads
# (migration 0008).
UNKEPT_COLUMNS = {"devices": ("last_seen_at",)}

kept_generation = Table(
    "kept_generation",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("value", BigInteger, nullable=False),
)


KEPT_GENERATION_ROW = "INSERT INTO kept_generation (id, value) VALUES (1, 0)"


def kept_generation_triggers() -> list[str]:
    """SQLite's triggers on ``KEPT_TABLES``, as migrations 0007 and 0008 leave them."""
    return [
        _KEPT_TRIGGER.format(table=table, name=operation.lower(), event=_event(table, operation))
        for table in KEPT_TABLES
        for operation in ("INSERT", "UPDATE", "DELETE")
    ]


def _event(table: str, operation: str) -> str:
    """``UPDATE OF`` every other column where some are in ``UNKEPT_COLUMNS`` (the table's
    module, ``tables_devices``, must be imported by then)."""
    unkept = UNKEPT_COLUMNS.get(table)
    if operation != "UPDATE" or unkept is None:
        return operation
    columns = [c.name for c in metadata.tables[table].columns if c.name not in unkept]
    return f"UPDATE OF {', '.join(columns)}"


@event.listens_for(metadata, "after_create")
def _kept_generation_for_create_all(target: MetaData, connection: Any, **_: Any) -> None:
    """``metadata.create_all`` (some tests) gets what the migration creates."""
    connection.execute(text(KEPT_GENERATION_ROW))
    if connection.dialect.name == "sqlite":
        for trigger in kept_generation_triggers():
            connection.execute(text(trigger))
