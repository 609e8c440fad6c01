"""Event bus over Redis pub/sub (``events.redis_url``).

Each message is ``<origin> <topic>``: the origin, random per bus instance, lets a process
skip its own messages (its publish already woke local waiters).
"""

from __future__ import annotations

import asyncio
import secrets
from contextlib import suppress
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from backchannel.events.relay import RelayedEventBus

CHANNEL = "backchannel_events"


class RedisEventBus(RelayedEventBus):
    backend = "redis"

    def __init__(self, url: str, *, channel: str = CHANNEL, reconnect_delay: float = 1.0) -> None:
        super().__init__(reconnect_delay=reconnect_delay)
        self._url = url
        self._channel = channel
        self._origin = secrets.token_hex(8)
        self._client: Redis | None = None
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None

    async def _connect(self) -> None:
        client = Redis.from_url(self._url, socket_connect_timeout=5)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self._channel)
        except BaseException:
            await pubsub.aclose()
            await client.aclose()
            raise
        self._client, self._pubsub = client, pubsub
        self._reader = asyncio.create_task(self._read(pubsub))

    async def _read(self, pubsub: PubSub) -> None:
        async for message in pubsub.listen():
            await self._handle(message)

    async def _handle(self, message: dict[str, Any]) -> None:
        data = message.get("data")
        if message.get("type") != "message" or not isinstance(data, bytes):
            return
        origin, _, topic = data.decode().partition(" ")
        if origin != self._origin and topic:
            await self._received(topic)

    async def _until_lost(self) -> None:
        reader = self._reader
        if reader is None:
            return
        with suppress(Exception):
            await reader

    async def _disconnect(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None and not reader.done():
            reader.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await reader
        pubsub, self._pubsub = self._pubsub, None
        client, self._client = self._client, None
        with suppress(Exception):
            if pubsub is not None:
                await pubsub.aclose()
            if client is not None:
                await client.aclose()

    async def _send(self, topic: str) -> None:
        if self._client is None:
            raise ConnectionError("not connected to Redis")
        await self._client.publish(self._channel, f"{self._origin} {topic}")
