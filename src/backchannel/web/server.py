"""The Starlette application: routes, JSON errors for everything, lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from backchannel.outbox.runner import outbox_in_server
from backchannel.protocol import paths
from backchannel.protocol.endpoints import (
    backchannel,
    discovery,
    introspection,
    jwks,
    revocation,
    testing,
    token,
    userinfo,
)
from backchannel.protocol.provider import Provider
from backchannel.settings import Settings
from backchannel.web import app_static
from backchannel.web.adapter import (
    Handler,
    ProviderSlot,
    endpoint,
    internal_error_response,
    json_response,
)
from backchannel.web.authenticator import authenticator_routes
from backchannel.web.fast_routes import FastPostRoutes, HotPosts
from backchannel.web.metrics import METRICS_PATH, metrics_endpoint
from backchannel.web.middleware import RequestContext

ProviderFactory = Callable[[], Awaitable[Provider]]

_ERROR_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def build_app(
    settings: Settings,
    *,
    provider: Provider | None = None,
    provider_factory: ProviderFactory | None = None,
) -> ASGIApp:
    """An app around a ready ``provider`` (tests) or one built at startup by the factory."""
    slot = ProviderSlot(provider)
    prefix = urlsplit(settings.issuer).path.rstrip("/")

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if provider_factory is None:
            yield
            return
        built = await provider_factory()
        slot.set(built)
        try:
            async with outbox_in_server(built):
                yield
        finally:
            slot.set(None)
            await built.events.close()
            await built.storage.close()

    routes = _routes(settings, slot, prefix)
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
    )
    fast = FastPostRoutes(app, HotPosts(slot, routes, _hot_handlers(settings, prefix)))
    return RequestContext(
        fast, access_log=settings.server.access_log, metrics=settings.metrics.enabled
    )


def _hot_handlers(settings: Settings, prefix: str) -> dict[str, Handler]:
    """The POST endpoints of every CIBA flow, answered by ``FastPostRoutes``."""
    hot: dict[str, Handler] = {
        prefix + paths.BACKCHANNEL: backchannel.handle,
        prefix + paths.TOKEN: token.handle,
    }
    if settings.testing.automated_approval:
        hot[prefix + paths.TEST_APPROVE] = testing.approve_hook
    return hot


def _routes(settings: Settings, slot: ProviderSlot, prefix: str) -> list[BaseRoute]:
    def route(path: str, handler: Handler, methods: list[str]) -> Route:
        return Route(prefix + path, endpoint(slot, handler), methods=methods)

    routes: list[BaseRoute] = [
        route(paths.DISCOVERY, discovery.handle, ["GET"]),
        route(paths.JWKS, jwks.handle, ["GET"]),
        route(paths.BACKCHANNEL, backchannel.handle, ["POST"]),
        route(paths.TOKEN, token.handle, ["POST"]),
        route(paths.USERINFO, userinfo.handle, ["GET", "POST"]),
        route(paths.INTROSPECTION, introspection.handle, ["POST"]),
        route(paths.REVOCATION, revocation.handle, ["POST"]),
        Route(paths.HEALTH, _health, methods=["GET"]),
        Route(paths.READY, _ready_endpoint(slot), methods=["GET"]),
    ]
    if settings.metrics.enabled:
        routes.append(Route(METRICS_PATH, metrics_endpoint(slot), methods=["GET"]))
    if settings.testing.automated_approval:
        routes.append(route(paths.TEST_APPROVE, testing.approve_hook, ["POST"]))
    routes.extend(authenticator_routes(slot, prefix))
    routes.extend(app_static.routes(prefix))
    return routes


async def _health(_: Request) -> Response:
    return json_response(200, {"status": "ok"})


def _ready_endpoint(slot: ProviderSlot) -> Callable[[Request], Awaitable[Response]]:
    async def ready(_: Request) -> Response:
        try:
            reachable = await slot.get().storage.ping()
        except Exception:
            reachable = False
        if reachable:
            return json_response(200, {"status": "ready"})
        return json_response(503, {"status": "unavailable", "database": "unreachable"})

    return ready


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _ERROR_CODES.get(exc.status_code, "invalid_request")
    headers = dict(exc.headers or {})
    return json_response(exc.status_code, {"error": code, "error_description": exc.detail}, headers)


async def _internal_error(_: Request, exc: Exception) -> Response:
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    return internal_error_response(exc, request_id)
