"""Routes of the device API under ``/authenticator/api`` (the app's static files are
served by ``web/app_static.py``). Server-Sent Events wake on the ``user:<subject>`` topic of
the event bus and always re-read storage, which stays the source of truth."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from backchannel.authenticator import api
from backchannel.protocol.errors import OAuthError
from backchannel.protocol.events import user_topic
from backchannel.protocol.http import HttpRequest, HttpResponse
from backchannel.protocol.model import Device
from backchannel.protocol.provider import Provider
from backchannel.web.adapter import ProviderSlot, error_response, read_body, to_response

API = "/authenticator/api"
KEEP_ALIVE_SECONDS = 15.0
PathHandler = Callable[[Provider, HttpRequest, str], Awaitable[HttpResponse]]
PlainHandler = Callable[[Provider, HttpRequest], Awaitable[HttpResponse]]


def authenticator_routes(slot: ProviderSlot, prefix: str) -> list[BaseRoute]:
    base = prefix + API

    def plain(path: str, handler: PlainHandler, method: str) -> Route:
        async def run(provider: Provider, request: HttpRequest, _: str) -> HttpResponse:
            return await handler(provider, request)

        return Route(base + path, _endpoint(slot, run), methods=[method])

    def with_id(path: str, handler: PathHandler) -> Route:
        return Route(base + path, _endpoint(slot, handler), methods=["POST"])

    return [
        plain("/enrol", api.enrol_device, "POST"),
        plain("/inbox", api.inbox, "GET"),
        Route(base + "/events", _events_endpoint(slot), methods=["GET"]),
        plain("/push/key", api.push_key, "GET"),
        plain("/push/subscription", api.push_subscription, "POST"),
        plain("/webauthn/register/options", api.webauthn_register_options, "POST"),
        plain("/webauthn/register", api.webauthn_register, "POST"),
        with_id("/requests/{request_id}/decision", api.decide),
        with_id("/requests/{request_id}/webauthn/options", api.webauthn_assertion_options),
    ]


async def _http_request(provider: Provider, request: Request) -> HttpRequest:
    body = b""
    if request.method == "POST":
        body = await read_body(request, provider.settings.server.max_body_bytes)
    return HttpRequest(
        method=request.method,
        url=str(request.url),
        headers=request.headers,
        body=body,
        query=request.url.query,
    )


def _endpoint(slot: ProviderSlot, handler: PathHandler) -> Callable[[Request], Awaitable[Response]]:
    async def route(request: Request) -> Response:
        provider = slot.get()
        try:
            http_request = await _http_request(provider, request)
            request_id = str(request.path_params.get("request_id", ""))
            return to_response(await handler(provider, http_request, request_id))
        except OAuthError as error:
            return error_response(error)

    return route


def _events_endpoint(slot: ProviderSlot) -> Callable[[Request], Awaitable[Response]]:
    async def events(request: Request) -> Response:
        provider = slot.get()
        try:
            device = await api.authenticate(provider, await _http_request(provider, request))
        except OAuthError as error:
            return error_response(error)
        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(
            _stream(provider, device, request), media_type="text/event-stream", headers=headers
        )

    return events


async def _stream(provider: Provider, device: Device, request: Request) -> AsyncIterator[bytes]:
    seen = await api.pending_ids(provider, device)
    yield b": connected\n\n"
    for request_id in sorted(seen):
        yield _event("request", request_id)
    while not await request.is_disconnected():
        woke = await provider.events.wait(user_topic(device.subject), KEEP_ALIVE_SECONDS)
        current_device = await provider.storage.devices.get_device(device.device_id)
        if current_device is None or not current_device.active:
            return
        current = await api.pending_ids(provider, device)
        for request_id in sorted(current - seen):
            yield _event("request", request_id)
        for request_id in sorted(seen - current):
            yield _event("resolved", request_id)
        if not woke:
            yield b": keep-alive\n\n"
        seen = current


def _event(kind: str, request_id: str) -> bytes:
    data = orjson.dumps({"request_id": request_id}).decode()
    return f"event: {kind}\ndata: {data}\n\n".encode()
