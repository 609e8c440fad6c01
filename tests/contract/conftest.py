"""The one storage contract suite: every test here runs on memory, SQLite and PostgreSQL."""

from tests.support.fixtures import postgres_url, storage

__all__ = ["postgres_url", "storage"]
