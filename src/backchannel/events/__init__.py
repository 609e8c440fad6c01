"""Event bus backends chosen by ``settings.events.backend``.

``memory`` wakes waiters in this process only (one server process). ``postgres`` and
``redis`` also carry each publish to every other process, so a decision taken through one
server wakes the long polls held by another.
"""

from __future__ import annotations

from backchannel.protocol.events import EventBus, LocalEventBus
from backchannel.settings import ConfigurationError, Settings


async def open_event_bus(settings: Settings) -> EventBus:
    """The configured bus, connected. Raises ``ConfigurationError`` for a postgres bus on a
    database that is not PostgreSQL."""
    match settings.events.backend:
        case "memory":
            return LocalEventBus()
        case "postgres":
            return await _postgres_bus(settings)
        case "redis":
            from backchannel.events.redis import RedisEventBus

            redis_bus = RedisEventBus(settings.events.redis_url)
            await redis_bus.open()
            return redis_bus


async def _postgres_bus(settings: Settings) -> EventBus:
    if not settings.database.url.startswith("postgresql"):
        raise ConfigurationError(
            "events.backend = postgres needs a PostgreSQL database.url "
            "(postgresql+asyncpg://...); use memory or redis with SQLite"
        )
    from backchannel.events.postgres import PostgresEventBus, asyncpg_dsn

    bus = PostgresEventBus(asyncpg_dsn(settings.database.url))
    await bus.open()
    return bus


__all__ = ["open_event_bus"]
