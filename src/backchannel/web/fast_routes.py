"""A lean path for the hot POST endpoints (bc-authorize, token, the test approval hook).

Starlette's stack (error middlewares, router scan, ``Request`` object, async body stream)
costs more per request than the rest of our request handling outside storage and signing.
This pure ASGI app sits inside ``RequestContext`` (request id, access log and metrics stay
as they are), answers an exact-path POST to one of those endpoints itself, and hands
everything else to Starlette. The answer is the one Starlette would give: same
``HttpRequest``, same responses (``to_response``, ``error_response``) sent as the two ASGI
messages ``Response`` would send, the body limit, a JSON 500 for anything unexpected, and
``scope["route"]`` set for the metrics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import structlog
from starlette.datastructures import URL, Headers
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from backchannel.protocol.errors import OAuthError, PayloadTooLarge
from backchannel.protocol.http import HttpRequest
from backchannel.web.adapter import (
    Handler,
    ProviderSlot,
    error_response,
    internal_error_response,
    to_response,
)


class FastPostRoutes:
    def __init__(
        self,
        app: ASGIApp,
        slot: ProviderSlot,
        routes: Sequence[BaseRoute],
        handlers: Mapping[str, Handler],
    ) -> None:
        """``handlers``: full path (prefix included) -> handler; each path must be one of
        ``routes`` accepting POST, whose Route is what the metrics see."""
        self.app = app
        self._slot = slot
        by_path = {
            r.path: r for r in routes if isinstance(r, Route) and "POST" in (r.methods or ())
        }
        self._hot = {path: (handler, by_path[path]) for path, handler in handlers.items()}
        self._urls = RequestUrls()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hot = self._hot.get(scope["path"]) if scope["type"] == "http" else None
        if hot is None or scope["method"] != "POST" or scope.get("root_path"):
            await self.app(scope, receive, send)
            return
        handler, route = hot
        scope["route"] = route
        try:
            response = await self._answer(handler, scope, receive)
        except Exception as exc:
            request_id = structlog.contextvars.get_contextvars().get("request_id")
            response = internal_error_response(exc, request_id)
        # What ``Response.__call__`` sends (no background tasks here), without the call.
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": response.raw_headers,
            }
        )
        await send({"type": "http.response.body", "body": response.body})

    async def _answer(self, handler: Handler, scope: Scope, receive: Receive) -> Response:
        provider = self._slot.get()
        headers = Headers(scope=scope)
        try:
            body = await _read_body(headers, receive, provider.settings.server.max_body_bytes)
            url, query = self._urls.url_and_query(scope)
            http_request = HttpRequest(
                method="POST", url=url, headers=headers, body=body, query=query
            )
            return to_response(await handler(provider, http_request))
        except OAuthError as error:
            return error_response(error)


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


async def _read_body(headers: Headers, receive: Receive, limit: int) -> bytes:
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body exceeds {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
