"""A device's heartbeat no longer bumps kept_generation: SQLite's trigger on updates of
``devices`` fires only when a column other than ``last_seen_at`` is named, so the
authenticator app's calls (each stores last_seen_at at most once a minute per device) do
not make every worker drop its kept clients, users, devices and pauses. Nothing on
PostgreSQL (no triggers there).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    "device_id, subject, name, public_jwk, token_hash, created_at, revoked_at, credentials, push"
)
TRIGGER = (
    "CREATE TRIGGER kept_generation_devices_update AFTER {event} ON devices "
    "BEGIN UPDATE kept_generation SET value = value + 1 WHERE id = 1; END"
)


def upgrade() -> None:
    _replace_trigger(f"UPDATE OF {COLUMNS}")


def downgrade() -> None:
    _replace_trigger("UPDATE")


def _replace_trigger(event: str) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("DROP TRIGGER kept_generation_devices_update")
    op.execute(TRIGGER.format(event=event))
