"""The outbox: durable outgoing deliveries (ping, push, device notices) and the worker lease
that lets only one SQLite worker claim at a time.

Payloads are sealed (AES-GCM, ``protocol.sealed``): they carry auth_req_ids, notification
tokens and, for push, live tokens, which must never sit in the database in plaintext.
"""

from __future__ import annotations

from sqlalchemy import Column, Double, Index, Integer, String, Table

from backchannel.storage.sql.tables import metadata

outbox_entries = Table(
    "outbox_entries",
    metadata,
    Column("id", String, primary_key=True),
    Column("kind", String, nullable=False),
    Column("id_hash", String, nullable=True),
    Column("client_id", String, nullable=True),
    Column("url", String, nullable=False),
    Column("payload", String, nullable=False),
    Column("state", String, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Double, nullable=False),
    Column("lease_owner", String, nullable=True),
    Column("lease_until", Double, nullable=True),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    Column("deliver_until", Double, nullable=True),
    Column("last_error", String, nullable=True),
    Index("ix_outbox_entries_state_next_attempt_at", "state", "next_attempt_at"),
    Index("ix_outbox_entries_id_hash", "id_hash"),
)

worker_leases = Table(
    "worker_leases",
    metadata,
    Column("name", String, primary_key=True),
    Column("owner", String, nullable=False),
    Column("lease_until", Double, nullable=False),
)
