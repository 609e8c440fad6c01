"""SQL storage (SQLAlchemy 2 async Core) for SQLite and PostgreSQL."""

from __future__ import annotations

from backchannel.storage.sql.storage import SqlStorage, open_sql_storage

__all__ = ["SqlStorage", "open_sql_storage"]
