"""The dialect-specific INSERT that knows ``ON CONFLICT`` (SQLite and PostgreSQL both do)."""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite

from backchannel.storage.sql.engine import Database


def upsert_insert(engine: Database, table: Table) -> sqlite.Insert | postgresql.Insert:
    if engine.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
