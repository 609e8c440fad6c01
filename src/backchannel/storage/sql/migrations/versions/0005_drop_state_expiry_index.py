"""Drop the (state, expires_at) index: the sweeper finds overdue requests through
(state, delivery_mode, expires_at), one range per delivery mode, and every commit that
creates or decides a request has one index page less to write.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_auth_requests_state_expires_at", table_name="auth_requests")


def downgrade() -> None:
    op.create_index("ix_auth_requests_state_expires_at", "auth_requests", ["state", "expires_at"])
