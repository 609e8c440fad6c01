"""The only wiring place: ``compose(settings)`` builds stores, services and the ASGI app."""

from __future__ import annotations

import gc

from starlette.types import ASGIApp

from backchannel.events import open_event_bus
from backchannel.master_secret import load_master_secret
from backchannel.outbound import CachingJwksFetcher, OutboundClient
from backchannel.protocol.keys import KeyRing
from backchannel.protocol.ports import Clock, TokenSource
from backchannel.protocol.provider import Provider, SystemClock
from backchannel.protocol.sealed import Sealer
from backchannel.protocol.secrets import RandomTokens, SecretHasher
from backchannel.settings import Settings
from backchannel.storage import open_storage


async def build_provider(
    settings: Settings, *, clock: Clock | None = None, random: TokenSource | None = None
) -> Provider:
    """Open storage, load (or create) signing keys, and bundle the services."""
    clock = clock or SystemClock()
    master = load_master_secret(settings.keys)
    storage = await open_storage(settings.database)
    try:
        keys = KeyRing(storage.keys, clock, master.key_encryption_key, settings.keys)
        await keys.ensure_keys()
        events = await open_event_bus(settings)
    except BaseException:
        await storage.close()
        raise
    provider = Provider(
        settings=settings,
        storage=storage,
        keys=keys,
        hasher=SecretHasher(master.pepper),
        clock=clock,
        random=random or RandomTokens(),
        events=events,
        # Unpooled: jwks_uri fetches are rare (cached), and it leaves nothing to close.
        jwks_fetcher=CachingJwksFetcher(OutboundClient(settings, pooled=False), clock),
        sealer=Sealer(master.delivery_key),
    )
    return provider


def compose(settings: Settings, *, provider: Provider | None = None) -> ASGIApp:
    """The ASGI app. Without ``provider`` it builds one at startup (lifespan)."""
    from backchannel.web.logs import configure_logging
    from backchannel.web.server import build_app

    configure_logging(settings.logging.level, settings.logging.json_logs)

    async def factory() -> Provider:
        return await build_provider(settings)

    return build_app(settings, provider=provider, provider_factory=None if provider else factory)


def create_app() -> ASGIApp:
    """uvicorn factory (``backchannel.app:create_app``): settings from file and environment."""
    from backchannel.settings import load_settings

    app = compose(load_settings())
    tune_garbage_collector()
    return app


def tune_garbage_collector() -> None:
    """For a serving process: what exists at start-up (modules, settings, routes) lives as
    long as the process, so the collector stops walking it (``gc.freeze``); and a young
    collection runs every 20,000 net allocations instead of 700. A request allocates a few
    thousand short-lived objects, nearly all freed by reference counting, and the default
    threshold ran the cycle collector several times per request (about 3 % of the CPU of a
    poll flow). Cycles are still found, a little later."""
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)
