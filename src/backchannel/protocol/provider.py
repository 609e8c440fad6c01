"""The services every endpoint works with, built once by ``app.compose``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from backchannel.protocol.events import EventBus, LocalEventBus
from backchannel.protocol.ports import Clock, JwksFetcher, Storage, TokenSource
from backchannel.protocol.sealed import Sealer
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
    # Fetches clients' ``jwks_uri`` (through the SSRF-guarded outbound client); None: no
    # jwks_uri support (such clients then fail authentication).
    jwks_fetcher: JwksFetcher | None = None
    # Seals delivery secrets and outbox payloads; ``app.build_provider`` derives its key from
    # the master secret so every process opens what another sealed.
    sealer: Sealer = field(default_factory=Sealer.ephemeral)

    @property
    def issuer(self) -> str:
        return self.settings.issuer

    def endpoint(self, path: str) -> str:
        return self.settings.issuer + path
