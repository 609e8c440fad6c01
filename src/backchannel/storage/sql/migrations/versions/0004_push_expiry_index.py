"""Index for the sweeper's per-delivery-mode expiry query (push expiry errors).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_auth_requests_state_mode_expires_at",
        "auth_requests",
        ["state", "delivery_mode", "expires_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_auth_requests_state_mode_expires_at", table_name="auth_requests")
