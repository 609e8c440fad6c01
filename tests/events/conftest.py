"""Fixtures for the event-bus and long-polling tests."""

from __future__ import annotations

from tests.support.fixtures import postgres_url, storage

__all__ = ["postgres_url", "storage"]
