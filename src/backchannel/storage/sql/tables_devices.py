"""Authentication devices: devices, enrolment codes, the consent fixed at request creation,
notice counting, "This wasn't me" reports, per-client pauses and server secrets (VAPID).
Created by migration 0003, which also adds the two authenticator policy columns of
``clients`` (declared in ``tables.py``)."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Double, Index, String, Table

from backchannel.storage.sql.tables import EventId, metadata

devices = Table(
    "devices",
    metadata,
    Column("device_id", String, primary_key=True),
    Column("subject", String, nullable=False),
    Column("name", String, nullable=False),
    Column("public_jwk", JSON(), nullable=False),
    Column("token_hash", String, nullable=False, unique=True),
    Column("created_at", Double, nullable=False),
    Column("last_seen_at", Double, nullable=True),
    Column("revoked_at", Double, nullable=True),
    Column("credentials", JSON(), nullable=False),
    Column("push", JSON(none_as_null=True), nullable=True),
    Index("ix_devices_subject", "subject"),
)

enrolment_codes = Table(
    "enrolment_codes",
    metadata,
    Column("code_hash", String, primary_key=True),
    Column("subject", String, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double, nullable=False),
    Column("used_at", Double, nullable=True),
)

consents = Table(
    "consents",
    metadata,
    Column("id_hash", String, primary_key=True),
    Column("subject", String, nullable=False),
    Column("content", String, nullable=False),
    Column("content_mac", String, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("binding_choices", JSON(none_as_null=True), nullable=True),
    Index("ix_consents_subject_created_at", "subject", "created_at"),
)

device_notices = Table(
    "device_notices",
    metadata,
    Column("id", EventId, primary_key=True, autoincrement=True),
    Column("subject", String, nullable=False),
    Column("at", Double, nullable=False),
    Index("ix_device_notices_subject_at", "subject", "at"),
)

device_reports = Table(
    "device_reports",
    metadata,
    Column("id", EventId, primary_key=True, autoincrement=True),
    Column("client_id", String, nullable=False),
    Column("subject", String, nullable=False),
    Column("id_hash", String, nullable=False),
    Column("device_id", String, nullable=False),
    Column("at", Double, nullable=False),
    Index("ix_device_reports_at", "at"),
)

device_pauses = Table(
    "device_pauses",
    metadata,
    Column("client_id", String, primary_key=True),
    Column("subject", String, primary_key=True),
    Column("until", Double, nullable=False),
)

server_secrets = Table(
    "server_secrets",
    metadata,
    Column("name", String, primary_key=True),
    Column("value", String, nullable=False),
)
