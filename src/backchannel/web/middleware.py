"""The pure ASGI middleware around every HTTP request: a request id (``x-request-id``, also
bound for the logs), a JSON 500 when the app fails before answering, one JSON access line and
the Prometheus request metrics. One layer and one ``send`` wrapper do all of it: the status
the wrapper sees is the one logged and counted.

The logged path never includes the query string (it may carry tokens)."""

from __future__ import annotations

import itertools
import os
import re
import time

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backchannel.web.adapter import internal_error_response
from backchannel.web.logs import log_request
from backchannel.web.metrics import record_request, route_template

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_REQUEST_ID_HEADER = b"x-request-id"


class RequestContext:
    def __init__(self, app: ASGIApp, *, access_log: bool, metrics: bool) -> None:
        self.app = app
        self.access_log = access_log
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_for(scope)
        id_header = (_REQUEST_ID_HEADER, request_id.encode())
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # Starlette's error handler has already answered (and logged) when the
            # response started; otherwise answer here. Either way the server sees no raise.
            if not response_started:
                await internal_error_response(exc, request_id)(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            self.answered(route_template(scope), scope["method"], scope["path"], status, elapsed)
            structlog.contextvars.unbind_contextvars("request_id")

    def answered(self, route: str, method: str, path: str, status: int, seconds: float) -> None:
        """The metrics and the access line of one answered request."""
        # Counted first: a failing log write must not lose the count.
        if self.metrics:
            record_request(route, status, seconds)
        if self.access_log:
            log_request(method, path, status, round(seconds * 1000, 2))


def request_id_for(scope: Scope) -> str:
    """The client's ``x-request-id`` when it is safe to echo and log, else a new one."""
    for name, value in scope.get("headers", ()):
        if name == _REQUEST_ID_HEADER:
            candidate: str = value.decode("latin-1")
            if _SAFE_REQUEST_ID.match(candidate):
                return candidate
    return _new_request_id()


class _RequestIds:
    """Unique, not secret (an id grants nothing): a random prefix per process and a
    counter, 16 hex characters like the ``os.urandom(8).hex()`` ids before, without a
    ``getrandom`` system call per request. A forked child draws its own prefix."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._prefix = os.urandom(4).hex()
        self._count = itertools.count(int.from_bytes(os.urandom(2), "big"))

    def __call__(self) -> str:
        count = next(self._count)
        if count > 0xFFFFFFFF:
            self.reset()
            count = next(self._count)
        return f"{self._prefix}{count:08x}"


_new_request_id = _RequestIds()
os.register_at_fork(after_in_child=_new_request_id.reset)
