"""What the HTTP layer costs per request, in-process (see docs/performance.md, "What remains").

The real app behind the real uvicorn protocol that ``backchannel serve`` uses (which answers
the hot routes with its ``LeanPostCycle``, step 25 of that document), fed ``POST /token``
with an unknown client through a transport that only collects the bytes it is given,
against ``token.handle`` called with the same request. Both answer ``invalid_client``; the
difference is the HTTP layer. The access line is off (log level warning) so that the figure
is the layer's, not the terminal's.

    .venv/bin/python bench/http_layer.py [REQUESTS]
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvloop
from starlette.datastructures import Headers
from uvicorn.config import Config
from uvicorn.server import ServerState

from backchannel.protocol.endpoints import token
from backchannel.protocol.errors import OAuthError
from backchannel.protocol.http import HttpRequest
from backchannel.protocol.keys import KeyRing
from backchannel.protocol.provider import Provider, SystemClock
from backchannel.protocol.secrets import RandomTokens, SecretHasher
from backchannel.settings import Settings
from backchannel.storage import memory_storage
from backchannel.web import logs
from backchannel.web.server import build_app
from backchannel.web.uvicorn_http import CoalescingHttpToolsProtocol

ISSUER = "http://127.0.0.1:8080"
AUTH = base64.b64encode(b"nobody:wrong").decode()
BODY = b"grant_type=urn%3Aopenid%3Aparams%3Agrant-type%3Aciba&auth_req_id=abc"
RAW = (
    b"POST /token HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAuthorization: Basic "
    + AUTH.encode()
    + b"\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: "
    + str(len(BODY)).encode()
    + b"\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"
    + BODY
)


class CollectingTransport:
    """What the protocol needs of a transport; each write ends one response."""

    def __init__(self, on_write: Callable[[], None]) -> None:
        self.written: list[bytes] = []
        self._on_write = on_write

    def write(self, data: bytes) -> None:
        self.written.append(data)
        self._on_write()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8080), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def is_reading(self) -> bool:
        return True

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None: ...
    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None: ...


async def provider() -> Provider:
    settings = Settings(issuer=ISSUER, dev_mode=True)
    storage = memory_storage()
    clock = SystemClock()
    keys = KeyRing(storage.keys, clock, b"k" * 32, settings.keys)
    await keys.ensure_keys()
    return Provider(
        settings=settings,
        storage=storage,
        keys=keys,
        hasher=SecretHasher(b"p" * 32),
        clock=clock,
        random=RandomTokens(),
    )


def cpu_us_per_call(n: int) -> Callable[[Callable[[], Awaitable[None]]], Awaitable[float]]:
    async def measure(call: Callable[[], Awaitable[None]]) -> float:
        for _ in range(min(n, 2000)):  # warm-up
            await call()
        started = time.process_time()
        for _ in range(n):
            await call()
        return (time.process_time() - started) / n * 1e6

    return measure


async def main(n: int) -> None:
    logs.configure_logging("warning", json_logs=True)
    built = await provider()
    app = build_app(built.settings, provider=built)
    config = Config(
        app, access_log=False, log_level="warning", server_header=False, proxy_headers=False
    )
    config.load()
    loop = asyncio.get_running_loop()
    protocol = CoalescingHttpToolsProtocol(config, ServerState(), {}, _loop=loop)
    answered: list[asyncio.Future[None]] = []

    def on_write() -> None:
        if answered and not answered[-1].done():
            answered[-1].set_result(None)

    transport = CollectingTransport(on_write)
    protocol.connection_made(transport)  # type: ignore[arg-type]

    async def through_http() -> None:
        written = loop.create_future()
        answered[:] = [written]
        protocol.data_received(RAW)
        await written
        await asyncio.sleep(0)  # the request cycle ends after its write

    request = HttpRequest(
        method="POST",
        url=f"{ISSUER}/token",
        headers=Headers(
            {"authorization": f"Basic {AUTH}", "content-type": "application/x-www-form-urlencoded"}
        ),
        body=BODY,
        query="",
    )

    async def handler_only() -> None:
        with contextlib.suppress(OAuthError):
            await token.handle(built, request)

    measure = cpu_us_per_call(n)
    full = await measure(through_http)
    assert transport.written[-1].startswith(b"HTTP/1.1 401"), transport.written[-1][:80]
    bare = await measure(handler_only)
    print(
        f"{n} requests: full app {full:.1f} µs of CPU per request, handler alone {bare:.1f} µs,"
        f" HTTP layer {full - bare:.1f} µs"
    )


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20000))
