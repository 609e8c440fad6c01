"""Alembic migrations, run programmatically by ``backchannel.storage.migrate``."""
