"""The initial schema.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json(nullable: bool = False) -> sa.JSON:
    return sa.JSON(none_as_null=True) if nullable else sa.JSON()


def _time(name: str, nullable: bool = False) -> sa.Column[float]:
    return sa.Column(name, sa.Double(), nullable=nullable)


def _text(name: str, nullable: bool = True) -> sa.Column[str]:
    return sa.Column(name, sa.String(), nullable=nullable)


def upgrade() -> None:
    _clients()
    _users()
    _auth_requests()
    _timeline_events()
    _refresh_tokens()
    _small_tables()


def _clients() -> None:
    op.create_table(
        "clients",
        _text("client_id", nullable=False),
        _text("name", nullable=False),
        _text("token_endpoint_auth_method", nullable=False),
        _text("secret_hash"),
        _text("delivery_mode", nullable=False),
        _text("notification_endpoint"),
        _text("logo_uri"),
        _text("policy_uri"),
        sa.Column("jwks", _json(nullable=True), nullable=True),
        _text("jwks_uri"),
        sa.Column("user_code_parameter", sa.Boolean(), nullable=False),
        _text("request_signing_alg"),
        _text("id_token_signed_response_alg", nullable=False),
        sa.Column("scopes", _json(), nullable=False),
        sa.Column("hint_token_issuers", _json(), nullable=False),
        sa.Column("authorization_details_types", _json(), nullable=False),
        _time("created_at"),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("client_id", name="pk_clients"),
    )


def _users() -> None:
    op.create_table(
        "users",
        _text("subject", nullable=False),
        _text("username", nullable=False),
        _text("email"),
        _text("phone"),
        _text("display_name"),
        sa.Column("claims", _json(), nullable=False),
        _text("password_hash"),
        _text("user_code_hash"),
        sa.Column("user_code_failures", sa.Integer(), nullable=False),
        _time("user_code_locked_until"),
        _time("created_at"),
        _time("updated_at"),
        sa.PrimaryKeyConstraint("subject", name="pk_users"),
        sa.UniqueConstraint("username", name="uq_users_username"),
        sa.UniqueConstraint("email", name="uq_users_email"),
        sa.UniqueConstraint("phone", name="uq_users_phone"),
    )


def _auth_requests() -> None:
    op.create_table(
        "auth_requests",
        _text("id_hash", nullable=False),
        _text("client_id", nullable=False),
        _text("subject", nullable=False),
        sa.Column("scope", _json(), nullable=False),
        _text("delivery_mode", nullable=False),
        _time("created_at"),
        _time("expires_at"),
        sa.Column("interval", sa.Integer(), nullable=False),
        _text("state", nullable=False),
        sa.Column("acr_values", _json(), nullable=False),
        _text("binding_message"),
        _text("client_notification_token"),
        sa.Column("authorization_details", _json(nullable=True), nullable=True),
        sa.Column("requested_expiry", sa.Integer(), nullable=True),
        _time("last_polled_at", nullable=True),
        _time("decided_at", nullable=True),
        _time("auth_time", nullable=True),
        _text("acr"),
        sa.Column("amr", _json(), nullable=False),
        sa.PrimaryKeyConstraint("id_hash", name="pk_auth_requests"),
    )
    op.create_index("ix_auth_requests_state_expires_at", "auth_requests", ["state", "expires_at"])
    op.create_index("ix_auth_requests_subject_state", "auth_requests", ["subject", "state"])
    op.create_index("ix_auth_requests_created_at", "auth_requests", ["created_at"])


def _timeline_events() -> None:
    op.create_table(
        "timeline_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        _text("id_hash", nullable=False),
        _time("at"),
        _text("kind", nullable=False),
        sa.Column("detail", _json(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_timeline_events"),
        sa.ForeignKeyConstraint(
            ["id_hash"],
            ["auth_requests.id_hash"],
            name="fk_timeline_events_id_hash",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_timeline_events_id_hash", "timeline_events", ["id_hash"])


def _refresh_tokens() -> None:
    op.create_table(
        "refresh_tokens",
        _text("token_hash", nullable=False),
        _text("family_id", nullable=False),
        _text("client_id", nullable=False),
        _text("subject", nullable=False),
        sa.Column("scope", _json(), nullable=False),
        _time("created_at"),
        _time("expires_at"),
        _time("auth_time"),
        _text("acr"),
        sa.Column("amr", _json(), nullable=False),
        sa.Column("authorization_details", _json(nullable=True), nullable=True),
        _time("rotated_at", nullable=True),
        _time("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name="pk_refresh_tokens"),
    )
    op.create_index("ix_refresh_tokens_family_id", "refresh_tokens", ["family_id"])


def _small_tables() -> None:
    op.create_table(
        "revoked_access_tokens",
        _text("jti", nullable=False),
        _time("expires_at"),
        sa.PrimaryKeyConstraint("jti", name="pk_revoked_access_tokens"),
    )
    op.create_table(
        "replay_keys",
        _text("key", nullable=False),
        _time("expires_at"),
        sa.PrimaryKeyConstraint("key", name="pk_replay_keys"),
    )
    op.create_table(
        "signing_keys",
        _text("kid", nullable=False),
        _text("alg", nullable=False),
        sa.Column("public_jwk", _json(), nullable=False),
        _text("private_jwk_encrypted", nullable=False),
        _time("created_at"),
        _time("sign_from"),
        _time("sign_until", nullable=True),
        _time("publish_until", nullable=True),
        sa.PrimaryKeyConstraint("kid", name="pk_signing_keys"),
    )


def downgrade() -> None:
    for table in (
        "signing_keys",
        "replay_keys",
        "revoked_access_tokens",
        "refresh_tokens",
        "timeline_events",
        "auth_requests",
        "users",
        "clients",
    ):
        op.drop_table(table)
