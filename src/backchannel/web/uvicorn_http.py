"""uvicorn's httptools protocol as ``backchannel serve`` runs it.

Two changes to uvicorn's: one socket write per response, and the hot POST routes answered
without the ASGI request cycle.

uvicorn writes the status line and headers on ``http.response.start`` and the body on
``http.response.body``: two ``send()`` system calls (and, with TCP_NODELAY, two packets)
for every small JSON response. Here the connection's transport collects the writes made
in one turn of the event loop and sends them together at the end of it. Nothing is held
longer than that turn; ``close()`` sends what is pending first.

A POST to bc-authorize, token or the test approval hook (``HotPosts``) costs about 100 µs of
CPU in uvicorn's request cycle and our ASGI layers around a handler that needs 15 µs to
refuse a client (``bench/http_layer.py``): the ASGI scope, an ``asyncio.Event`` per
request, the two ASGI messages through ``RequestContext``'s ``send`` wrapper, uvicorn's
header checks, Starlette's ``Response``. For those routes ``on_headers_complete`` puts a
``LeanPostCycle`` where uvicorn puts its ``RequestResponseCycle``: uvicorn's parser
callbacks fill its body as they fill uvicorn's, pipelined requests queue behind it the same
way, ``on_response_complete`` arms keep-alive and starts the next one, and shutdown and
lost connections find the attributes they set. It answers what ``FastPostRoutes`` would
(``HotPosts.answer``), with the same request id, metrics and access line as
``RequestContext`` (its ``answered``), written as one byte string. Every other request, and
any app that is not ``build_app``'s, goes through uvicorn's cycle unchanged.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httptools
import structlog
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from uvicorn.protocols.http.httptools_impl import (
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
)

from backchannel.web.adapter import internal_error_response, too_large
from backchannel.web.fast_routes import FastPostRoutes, HotPost, HotPosts, RawResponse
from backchannel.web.middleware import RequestContext, request_id_for

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# nginx's code for a request whose client went away before the answer; logged, never sent
CLIENT_CLOSED = 499


class CoalescingTransport(asyncio.Transport):
    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))

    def _flush(self) -> None:
        if not self._pending:
            return
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending = []
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = []
        self._transport.abort()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """Pass as ``uvicorn.run(..., http=CoalescingHttpToolsProtocol)``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))
        self.lean = _lean_routes(self.app)

    def on_headers_complete(self) -> None:
        found = self._hot_post()
        if found is None:
            super().on_headers_complete()
            return
        hot, parsed_url = found
        http_version = self.parser.get_http_version()
        scope = self.scope
        scope["method"] = "POST"
        if http_version != "1.1":
            scope["http_version"] = http_version
        scope["path"] = parsed_url.path.decode("ascii")
        scope["raw_path"] = parsed_url.path
        scope["query_string"] = parsed_url.query or b""
        scope["route"] = hot.route  # type: ignore[typeddict-unknown-key]
        existing_cycle = self.cycle
        self.cycle = LeanPostCycle(  # type: ignore[assignment]
            self,
            hot,
            keep_alive=http_version != "1.0" and self.parser.should_keep_alive(),
            expect_100_continue=self.expect_100_continue,
        )
        if existing_cycle is None or existing_cycle.response_complete:
            self._start_asgi_task(self.cycle, self.app)
        else:  # pipelined: uvicorn starts it when the response before it is complete
            self.flow.pause_reading()
            self.pipeline.appendleft((self.cycle, self.app))

    def _hot_post(self) -> tuple[HotPost, Any] | None:
        """The hot route this request is for and its parsed URL, when the lean cycle may
        answer it."""
        lean = self.lean
        if lean is None or self.parser.get_method() != b"POST" or self.parser.should_upgrade():
            return None
        if self.limit_concurrency is not None and (
            len(self.connections) >= self.limit_concurrency
            or len(self.tasks) >= self.limit_concurrency
        ):
            return None  # uvicorn's cycle answers its 503
        # An exact match of the raw path: a percent-encoded or prefixed one takes the
        # ordinary way (uvicorn decodes it, FastPostRoutes or Starlette routes it).
        parsed_url = httptools.parse_url(self.url)
        hot = lean[1].by_raw_path.get(parsed_url.path)
        return None if hot is None else (hot, parsed_url)


def _lean_routes(app: Any) -> tuple[RequestContext, HotPosts] | None:
    """``build_app``'s layers, when the app uvicorn loaded is that app unwrapped."""
    if isinstance(app, RequestContext) and isinstance(app.app, FastPostRoutes):
        return app, app.app.hot
    return None


class _Wakeup:
    """What uvicorn's protocol calls ``message_event.set()`` on: more body, its end, or a
    lost connection."""

    __slots__ = ("waiter",)

    def __init__(self) -> None:
        self.waiter: asyncio.Future[None] | None = None

    def set(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class LeanPostCycle:
    """One hot POST on one connection, in place of uvicorn's ``RequestResponseCycle``
    (the attributes below are the ones uvicorn's protocol reads and sets)."""

    def __init__(
        self,
        protocol: CoalescingHttpToolsProtocol,
        hot: HotPost,
        *,
        keep_alive: bool,
        expect_100_continue: bool,
    ) -> None:
        self.protocol = protocol
        self.hot = hot
        self.scope = protocol.scope
        self.keep_alive = keep_alive
        self.waiting_for_100_continue = expect_100_continue
        self.body = bytearray()
        self.more_body = True
        self.message_event = _Wakeup()
        self.disconnected = False
        self.response_complete = False
        self.on_response = protocol.on_response_complete

    async def run_asgi(self, _app: object) -> None:
        started = time.perf_counter()
        context, hot_posts = self.protocol.lean  # type: ignore[misc]
        scope: Any = self.scope
        request_id = request_id_for(scope)
        structlog.contextvars.bind_contextvars(request_id=request_id)  # the task's own context
        status = CLIENT_CLOSED
        try:
            try:
                headers = Headers(raw=scope["headers"])
                response = await hot_posts.answer(self.hot, scope, headers, self.read_body)
                wire = self._wire(response, request_id)
            except ClientDisconnect:
                return
            except Exception as exc:
                response = RawResponse.of(internal_error_response(exc, request_id))
                wire = self._wire(response, request_id)
            if await self._send(wire):
                status = response.status
        finally:
            self.on_response = _nothing
            elapsed = time.perf_counter() - started
            context.answered(self.hot.route.path, "POST", scope["path"], status, elapsed)

    async def read_body(self, limit: int) -> bytes:
        """The whole body, or ``PayloadTooLarge`` as soon as it is longer than ``limit``."""
        while self.more_body:
            if len(self.body) > limit:
                raise too_large(limit)
            if self.disconnected:
                raise ClientDisconnect()
            transport = self.protocol.transport
            if self.waiting_for_100_continue and not transport.is_closing():
                transport.write(_CONTINUE)
                self.waiting_for_100_continue = False
            self.protocol.flow.resume_reading()  # uvicorn pauses it past 64 KiB of body
            waiter = self.protocol.loop.create_future()
            self.message_event.waiter = waiter
            await waiter
            self.message_event.waiter = None
        if len(self.body) > limit:
            raise too_large(limit)
        return bytes(self.body)

    def _wire(self, response: RawResponse, request_id: str) -> bytes:
        """The response as uvicorn's ``send`` would write it (its default headers, the
        value check against header injection, ``connection: close`` when not kept alive),
        with the request id last as ``RequestContext`` adds it."""
        content = [STATUS_LINE[response.status]]
        for name, value in self.protocol.server_state.default_headers:
            content += (name, b": ", value, b"\r\n")
        for name, value in response.headers:
            if HEADER_VALUE_RE.search(value):
                raise RuntimeError("Invalid HTTP header value.")
            content += (name, b": ", value, b"\r\n")
        content += (b"x-request-id: ", request_id.encode(), b"\r\n")
        if not self.keep_alive:
            content.append(b"connection: close\r\n")
        content += (b"\r\n", response.body)
        return b"".join(content)

    async def _send(self, wire: bytes) -> bool:
        """Writes the response and completes the cycle; False when the client is gone."""
        protocol = self.protocol
        if protocol.flow.write_paused and not self.disconnected:
            await protocol.flow.drain()
        if self.disconnected:
            return False
        self.waiting_for_100_continue = False
        # Sent at the end of this turn of the loop, with the other answers of the turn:
        # written at once, each answer woke the client sooner and the loop then met fewer
        # requests per turn (at C=64 more system time per flow than the write saved).
        protocol.transport.write(wire)
        self.response_complete = True
        if not self.keep_alive:
            protocol.transport.close()
        self.on_response()
        return True


def _nothing() -> None:
    return None
