"""kept_generation: one counter row bumped by SQLite triggers on every write to clients,
users, devices and device_pauses, the tables whose reads the SQLite stores keep in memory.
A worker that sees another connection's commit reads it to tell whether those tables
changed; before, any commit elsewhere (another worker deciding a request) emptied the
caches. On PostgreSQL the table exists but nothing reads it (nothing is kept there).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("clients", "users", "devices", "device_pauses")
OPERATIONS = ("INSERT", "UPDATE", "DELETE")
TRIGGER = (
    "CREATE TRIGGER kept_generation_{table}_{name} AFTER {operation} ON {table} "
    "BEGIN UPDATE kept_generation SET value = value + 1 WHERE id = 1; END"
)


def upgrade() -> None:
    op.create_table(
        "kept_generation",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_kept_generation"),
    )
    op.execute("INSERT INTO kept_generation (id, value) VALUES (1, 0)")
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        for operation in OPERATIONS:
            op.execute(TRIGGER.format(table=table, operation=operation, name=operation.lower()))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table in TABLES:
            for operation in OPERATIONS:
                op.execute(f"DROP TRIGGER kept_generation_{table}_{operation.lower()}")
    op.drop_table("kept_generation")
