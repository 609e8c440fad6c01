"""Authentication devices: devices, enrolment codes, consents, notices, reports, pauses,
server secrets, and the clients' authenticator policy columns.

Revision ID: 0003
Revises: 0002
Create Date: 2025-01-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_EVENT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time(name: str, nullable: bool = False) -> sa.Column[float]:
    return sa.Column(name, sa.Double(), nullable=nullable)


def _text(name: str, nullable: bool = True) -> sa.Column[str]:
    return sa.Column(name, sa.String(), nullable=nullable)


def upgrade() -> None:
    _client_policy()
    _devices()
    _codes_and_consents()
    _notices_reports_pauses()
    op.create_table(
        "server_secrets",
        _text("name", nullable=False),
        _text("value", nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_server_secrets"),
    )


def _client_policy() -> None:
    for name in ("binding_code_choice", "require_user_verification"):
        op.add_column(
            "clients",
            sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.false()),
        )


def _devices() -> None:
    op.create_table(
        "devices",
        _text("device_id", nullable=False),
        _text("subject", nullable=False),
        _text("name", nullable=False),
        sa.Column("public_jwk", sa.JSON(), nullable=False),
        _text("token_hash", nullable=False),
        _time("created_at"),
        _time("last_seen_at", nullable=True),
        _time("revoked_at", nullable=True),
        sa.Column("credentials", sa.JSON(), nullable=False),
        sa.Column("push", sa.JSON(none_as_null=True), nullable=True),
        sa.PrimaryKeyConstraint("device_id", name="pk_devices"),
        sa.UniqueConstraint("token_hash", name="uq_devices_token_hash"),
    )
    op.create_index("ix_devices_subject", "devices", ["subject"])


def _codes_and_consents() -> None:
    op.create_table(
        "enrolment_codes",
        _text("code_hash", nullable=False),
        _text("subject", nullable=False),
        _time("created_at"),
        _time("expires_at"),
        _time("used_at", nullable=True),
        sa.PrimaryKeyConstraint("code_hash", name="pk_enrolment_codes"),
    )
    op.create_table(
        "consents",
        _text("id_hash", nullable=False),
        _text("subject", nullable=False),
        _text("content", nullable=False),
        _text("content_mac", nullable=False),
        _time("created_at"),
        sa.Column("binding_choices", sa.JSON(none_as_null=True), nullable=True),
        sa.PrimaryKeyConstraint("id_hash", name="pk_consents"),
    )
    op.create_index("ix_consents_subject_created_at", "consents", ["subject", "created_at"])


def _notices_reports_pauses() -> None:
    op.create_table(
        "device_notices",
        sa.Column("id", _EVENT_ID, autoincrement=True, nullable=False),
        _text("subject", nullable=False),
        _time("at"),
        sa.PrimaryKeyConstraint("id", name="pk_device_notices"),
    )
    op.create_index("ix_device_notices_subject_at", "device_notices", ["subject", "at"])
    op.create_table(
        "device_reports",
        sa.Column("id", _EVENT_ID, autoincrement=True, nullable=False),
        _text("client_id", nullable=False),
        _text("subject", nullable=False),
        _text("id_hash", nullable=False),
        _text("device_id", nullable=False),
        _time("at"),
        sa.PrimaryKeyConstraint("id", name="pk_device_reports"),
    )
    op.create_index("ix_device_reports_at", "device_reports", ["at"])
    op.create_table(
        "device_pauses",
        _text("client_id", nullable=False),
        _text("subject", nullable=False),
        _time("until"),
        sa.PrimaryKeyConstraint("client_id", "subject", name="pk_device_pauses"),
    )


def downgrade() -> None:
    for table in (
        "server_secrets",
        "device_pauses",
        "device_reports",
        "device_notices",
        "consents",
        "enrolment_codes",
        "devices",
    ):
        op.drop_table(table)
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("require_user_verification")
        batch.drop_column("binding_code_choice")
