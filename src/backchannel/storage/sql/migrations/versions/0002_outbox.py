"""The outbox: deliveries, the worker lease, and the sealed delivery secret of a request.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, nullable: bool = False) -> sa.Column[float]:
    return sa.Column(name, sa.Double(), nullable=nullable)


def _text(name: str, nullable: bool = True) -> sa.Column[str]:
    return sa.Column(name, sa.String(), nullable=nullable)


def upgrade() -> None:
    op.add_column("auth_requests", _text("delivery_secret"))
    op.create_table(
        "outbox_entries",
        _text("id", nullable=False),
        _text("kind", nullable=False),
        _text("id_hash"),
        _text("client_id"),
        _text("url", nullable=False),
        _text("payload", nullable=False),
        _text("state", nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _time("next_attempt_at"),
        _text("lease_owner"),
        _time("lease_until", nullable=True),
        _time("created_at"),
        _time("updated_at"),
        _time("deliver_until", nullable=True),
        _text("last_error"),
        sa.PrimaryKeyConstraint("id", name="pk_outbox_entries"),
    )
    op.create_index(
        "ix_outbox_entries_state_next_attempt_at",
        "outbox_entries",
        ["state", "next_attempt_at"],
    )
    op.create_index("ix_outbox_entries_id_hash", "outbox_entries", ["id_hash"])
    op.create_table(
        "worker_leases",
        _text("name", nullable=False),
        _text("owner", nullable=False),
        _time("lease_until"),
        sa.PrimaryKeyConstraint("name", name="pk_worker_leases"),
    )


def downgrade() -> None:
    op.drop_table("worker_leases")
    op.drop_table("outbox_entries")
    with op.batch_alter_table("auth_requests") as batch:
        batch.drop_column("delivery_secret")
