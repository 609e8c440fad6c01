"""A lean path for the hot POST endpoints (bc-authorize, token, the test approval hook).

Starlette's stack (error middlewares, router scan, ``Request`` object, async body stream)
costs more per request than the rest of our request handling outside storage and signing.
``HotPosts`` answers an exact-path POST to one of those endpoints: the same ``HttpRequest``,
the same responses (``error_response`` for OAuth errors, the body limit), as the raw
status, headers and body Starlette's ``Response`` would send. Two transports use it:

- ``FastPostRoutes``, a pure ASGI app inside ``RequestContext`` (request id, access log and
  metrics stay there), which hands everything else to Starlette and sets
  ``scope["route"]`` for the metrics. Any ASGI server (and the in-process test client)
  goes through it.
- ``backchannel serve``'s uvicorn protocol (``web/uvicorn_http.py``), which answers these
  routes without the ASGI request cycle at all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import structlog
from starlette.datastructures import URL, Headers
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from backchannel.protocol.errors import OAuthError
from backchannel.protocol.http import HttpRequest, HttpResponse
from backchannel.web.adapter import (
    Handler,
    ProviderSlot,
    error_response,
    internal_error_response,
    refuse_declared_too_large,
    response_body,
    too_large,
)

BodyReader = Callable[[int], Awaitable[bytes]]


@dataclass(frozen=True, slots=True)
class RawResponse:
    """What goes on the wire: status, headers as Starlette sends them, body."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    @classmethod
    def of(cls, response: Response) -> RawResponse:
        return cls(response.status_code, response.raw_headers, bytes(response.body))


def raw_response(result: HttpResponse) -> RawResponse:
    """``RawResponse.of(to_response(result))`` without building the ``Response``: the same
    headers in the same order (the handler's, lower-cased; then content-length unless the
    status has no body; then content-type, with a charset for text types)."""
    body = response_body(result)
    headers = [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in result.headers.items()
    ]
    names = {name for name, _ in headers}
    if b"content-length" not in names and not (result.status < 200 or result.status in (204, 304)):
        headers.append((b"content-length", str(len(body)).encode("latin-1")))
    media_type = result.media_type
    if media_type is not None and b"content-type" not in names:
        if media_type.startswith("text/") and "charset=" not in media_type.lower():
            media_type += "; charset=utf-8"
        headers.append((b"content-type", media_type.encode("latin-1")))
    return RawResponse(result.status, headers, body)


@dataclass(frozen=True, slots=True)
class HotPost:
    handler: Handler
    route: Route  # what ``scope["route"]`` holds for the router and the metrics


class HotPosts:
    def __init__(
        self, slot: ProviderSlot, routes: Sequence[BaseRoute], handlers: Mapping[str, Handler]
    ) -> None:
        """``handlers``: full path (prefix included) -> handler; each path must be one of
        ``routes`` accepting POST, whose Route is what the metrics see."""
        self._slot = slot
        by_path = {
            r.path: r for r in routes if isinstance(r, Route) and "POST" in (r.methods or ())
        }
        self.by_path = {path: HotPost(handler, by_path[path]) for path, handler in handlers.items()}
        self.by_raw_path = {path.encode("ascii"): hot for path, hot in self.by_path.items()}
        self._urls = RequestUrls()

    async def answer(
        self, hot: HotPost, scope: Scope, headers: Headers, read_body: BodyReader
    ) -> RawResponse:
        """The response to one POST; raises only for what is not an OAuth error (the
        caller answers a JSON 500) and ``ClientDisconnect``."""
        provider = self._slot.get()
        try:
            limit = provider.settings.server.max_body_bytes
            refuse_declared_too_large(headers.get("content-length"), limit)
            body = await read_body(limit)
            url, query = self._urls.url_and_query(scope)
            http_request = HttpRequest(
                method="POST", url=url, headers=headers, body=body, query=query
            )
            return raw_response(await hot.handler(provider, http_request))
        except OAuthError as error:
            return RawResponse.of(error_response(error))


class FastPostRoutes:
    def __init__(self, app: ASGIApp, hot: HotPosts) -> None:
        self.app = app
        self.hot = hot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hot = self.hot.by_path.get(scope["path"]) if scope["type"] == "http" else None
        if hot is None or scope["method"] != "POST" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        scope["route"] = hot.route

        async def read_body(limit: int) -> bytes:
            return await _read_body(receive, limit)

        try:
            response = await self.hot.answer(hot, scope, Headers(scope=scope), read_body)
        except Exception as exc:
            request_id = structlog.contextvars.get_contextvars().get("request_id")
            response = RawResponse.of(internal_error_response(exc, request_id))
        # What ``Response.__call__`` sends (no background tasks here), without the call.
        await send(
            {"type": "http.response.start", "status": response.status, "headers": response.headers}
        )
        await send({"type": "http.response.body", "body": response.body})


class RequestUrls:
    """``str(URL(scope=scope))`` and its ``query``, remembered for the few distinct values a
    hot route sees (scheme, Host header, server address, path, query string): Starlette's
    ``URL`` validates the Host header and reassembles the URL on every request. Bounded, as
    the Host header and the query string come from the client."""

    def __init__(self, limit: int = 256) -> None:
        self._limit = limit
        self._known: dict[tuple[object, ...], tuple[str, str]] = {}

    def url_and_query(self, scope: Scope) -> tuple[str, str]:
        server = scope.get("server")
        key = (
            scope.get("scheme", "http"),
            _first_host_header(scope),
            None if server is None else tuple(server),
            scope["path"],
            scope.get("query_string", b""),
        )
        known = self._known.get(key)
        if known is None:
            url = URL(scope=scope)
            known = (str(url), url.query)
            if len(self._known) >= self._limit:
                self._known.clear()
            self._known[key] = known
        return known


def _first_host_header(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"host":
            host: bytes = value
            return host
    return None


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
