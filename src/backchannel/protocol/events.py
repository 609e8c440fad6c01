"""Wake-ups between parts of the server: a decision wakes long polls, a new request wakes
the user's open authenticator apps.

The ``EventBus`` port carries topic names only — never secrets — and delivery is
best-effort: waiters always re-read storage, which stays the source of truth. Topics:
``request:<id_hash>`` and ``user:<subject>``.
"""

from __future__ import annotations

import asyncio
from typing import Protocol


def request_topic(id_hash: str) -> str:
    return f"request:{id_hash}"


def user_topic(subject: str) -> str:
    return f"user:{subject}"


class EventBus(Protocol):
    async def publish(self, topic: str) -> None: ...
    async def wait(self, topic: str, timeout: float) -> bool:
        """True when ``topic`` was published during the wait, False on timeout."""
        ...

    async def close(self) -> None: ...


class LocalEventBus:
    """One process: waiters on a topic share an ``asyncio.Event`` replaced on publish."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self._waiters: dict[str, int] = {}

    @property
    def waiting(self) -> int:
        return sum(self._waiters.values())

    def waiting_on(self, prefix: str) -> int:
        """Waiters on topics starting with ``prefix`` (``"request:"``: held long polls)."""
        return sum(count for topic, count in self._waiters.items() if topic.startswith(prefix))

    async def publish(self, topic: str) -> None:
        event = self._events.pop(topic, None)
        if event is not None:
            event.set()

    async def wait(self, topic: str, timeout: float) -> bool:
        event = self._events.setdefault(topic, asyncio.Event())
        self._waiters[topic] = self._waiters.get(topic, 0) + 1
        try:
            await asyncio.wait_for(event.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._release(topic, event)

    def _release(self, topic: str, event: asyncio.Event) -> None:
        remaining = self._waiters[topic] - 1
        if remaining:
            self._waiters[topic] = remaining
            return
        del self._waiters[topic]
        if self._events.get(topic) is event:
            del self._events[topic]

    async def close(self) -> None:
        for event in self._events.values():
            event.set()
        self._events.clear()
