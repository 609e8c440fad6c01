"""The services every endpoint works with, built once by ``app.compose``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from backchannel.protocol.events import EventBus, LocalEventBus
from backchannel.protocol.ports import Clock, Storage, TokenSource
from backchannel.protocol.secrets import SecretHasher

if TYPE_CHECKING:
    from backchannel.protocol.keys import KeyRing
    from backchannel.settings import Settings


class SystemClock:
    def now(self) -> float:
        return time.time()


@dataclass(slots=True)
class Provider:
    settings: Settings
    storage: Storage
    keys: KeyRing
    hasher: SecretHasher
    clock: Clock
    random: TokenSource
    events: EventBus = field(default_factory=LocalEventBus)

    @property
    def issuer(self) -> str:
        return self.settings.issuer

    def endpoint(self, path: str) -> str:
        return self.settings.issuer + path
