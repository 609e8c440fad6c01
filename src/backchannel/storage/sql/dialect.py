"""The dialect-specific INSERT that knows ``ON CONFLICT`` (SQLite and PostgreSQL both do)."""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine


def upsert_insert(engine: AsyncEngine, table: Table) -> sqlite.Insert | postgresql.Insert:
    if engine.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
