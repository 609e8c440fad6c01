"""``CoalescingHttpToolsProtocol``: uvicorn with one write per response still speaks HTTP/1.1
correctly (keep-alive, several requests on one connection, ``Connection: close``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from starlette.types import Receive, Scope, Send

from tests.support.http import read_response, serving_in_process

pytestmark = pytest.mark.anyio


async def _echo_path(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    body = scope["path"].encode() * 2
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def _server() -> AsyncIterator[int]:
    async with serving_in_process(_echo_path) as server:
        yield server.config.port


async def test_keep_alive_connection_answers_every_request_in_order() -> None:
    async with _server() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for path in ("/a", "/bb", "/ccc"):
            writer.write(f"GET {path} HTTP/1.1\r\nhost: x\r\n\r\n".encode())
        await writer.drain()
        bodies = [(await read_response(reader))[1] for _ in range(3)]
        assert bodies == [b"/a/a", b"/bb/bb", b"/ccc/ccc"]
        writer.close()


async def test_connection_close_sends_the_response_before_closing() -> None:
    async with _server() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /last HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        await writer.drain()
        head, body = await read_response(reader)
        assert head.startswith(b"HTTP/1.1 200")
        assert body == b"/last/last"
        assert await reader.read() == b""  # the server closed after the response
        writer.close()
