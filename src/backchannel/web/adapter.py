"""Turns Starlette requests into ``HttpRequest`` values and protocol results into responses."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from backchannel.protocol.errors import OAuthError, PayloadTooLarge
from backchannel.protocol.http import HttpRequest, HttpResponse
from backchannel.protocol.provider import Provider
from backchannel.web.logs import get_logger

Handler = Callable[[Provider, HttpRequest], Awaitable[HttpResponse]]
log = get_logger("backchannel.web")


class ProviderSlot:
    """Holds the provider once the lifespan (or a test) has built it."""

    def __init__(self, provider: Provider | None = None) -> None:
        self._provider = provider

    def set(self, provider: Provider | None) -> None:
        self._provider = provider

    def get(self) -> Provider:
        if self._provider is None:
            raise RuntimeError("the provider is not ready")
        return self._provider


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, headers=headers, media_type="application/json"
    )


def error_response(error: OAuthError) -> Response:
    headers = {"Cache-Control": "no-store", **error.headers}
    return json_response(error.http_status, error.body(), headers)


def internal_error_response(exc: BaseException, request_id: str | None = None) -> Response:
    """A JSON 500 with an id that is also logged; never a stack trace on the wire."""
    error_id = secrets.token_hex(8)
    log.error("unhandled_exception", error_id=error_id, request_id=request_id,
              exc_type=type(exc).__name__, exc_info=exc)  # fmt: skip
    body = {"error": "server_error", "error_description": f"internal error, id {error_id}"}
    return json_response(500, body, {"Cache-Control": "no-store"})


def response_body(result: HttpResponse) -> bytes:
    if result.media_type == "application/json":
        return b"" if result.body is None else orjson.dumps(result.body)
    return result.body if isinstance(result.body, bytes) else str(result.body).encode()


def to_response(result: HttpResponse) -> Response:
    return Response(
        response_body(result),
        status_code=result.status,
        headers=result.headers,
        media_type=result.media_type,
    )


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the body exceeds {limit} bytes")


def refuse_declared_too_large(declared: str | None, limit: int) -> None:
    """A declared Content-Length above ``limit`` is refused before any body is read."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)


async def read_body(request: Request, limit: int) -> bytes:
    refuse_declared_too_large(request.headers.get("content-length"), limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def endpoint(slot: ProviderSlot, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint running ``handler``; OAuth errors become their responses."""

    async def route(request: Request) -> Response:
        provider = slot.get()
        try:
            body = b""
            if request.method in ("POST", "PUT", "PATCH"):
                body = await read_body(request, provider.settings.server.max_body_bytes)
            http_request = HttpRequest(
                method=request.method,
                url=str(request.url),
                headers=request.headers,
                body=body,
                query=request.url.query,
            )
            return to_response(await handler(provider, http_request))
        except OAuthError as error:
            return error_response(error)

    return route
