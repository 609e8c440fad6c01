"""``LeanPostCycle``: behind ``backchannel serve``'s uvicorn protocol the hot POST routes skip
the ASGI request cycle, and still answer exactly what ``FastPostRoutes`` answers, over a
real loopback connection: same status, body and headers, the request id, keep-alive and
pipelining, ``Connection: close`` and HTTP/1.0, a body in pieces with
``Expect: 100-continue``, the body limit (checklist item 77: bad input gets an OAuth
error, never a 500), a client that goes away, and the metrics and access line."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from prometheus_client import REGISTRY

from backchannel.protocol.provider import Provider
from backchannel.web.server import build_app
from backchannel.web.uvicorn_http import CLIENT_CLOSED, LeanPostCycle
from tests.support.ciba import add_client, add_user, basic
from tests.support.http import read_response, serving_in_process
from tests.support.provider import make_provider

pytestmark = pytest.mark.anyio

FORM = "application/x-www-form-urlencoded"
BC_AUTHORIZE = b"scope=openid&login_hint=user-1-name"


@dataclass
class Served:
    port: int
    server: uvicorn.Server

    def cycles(self) -> list[object]:
        return [protocol.cycle for protocol in self.server.server_state.connections]  # type: ignore[attr-defined]


@asynccontextmanager
async def _serving(provider: Provider) -> AsyncIterator[Served]:
    async with serving_in_process(build_app(provider.settings, provider=provider)) as server:
        yield Served(server.config.port, server)


async def _provider() -> Provider:
    provider = await make_provider(server={"max_body_bytes": 2048})
    await add_client(provider)
    await add_user(provider)
    return provider


def _without_per_response_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k not in ("date", "x-request-id")}


def _post(path: str, body: bytes, *extra: str) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1", "host: 127.0.0.1", f"authorization: {basic('rp-1')}",
        f"content-type: {FORM}", f"content-length: {len(body)}", *extra,
    ]  # fmt: skip
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _requests_counted(route: str, status: int) -> float:
    value = REGISTRY.get_sample_value(
        "backchannel_http_requests_total", {"endpoint": route, "status": str(status)}
    )
    return value or 0.0


ERROR_CASES: list[tuple[str, dict[str, Any]]] = [
    ("/token", {"content": b"grant_type=nope", "headers": {"content-type": FORM}}),
    ("/token", {"content": b"{}", "headers": {"content-type": "application/json"}}),
    ("/token", {"content": b"a=1&a=2", "headers": {"content-type": FORM}}),
    ("/bc-authorize", {"content": b"scope=openid", "headers": {"content-type": FORM}}),
    ("/bc-authorize", {"content": b"x" * 4096, "headers": {"content-type": FORM}}),
    (
        "/bc-authorize",
        {
            "content": b"scope=openid",
            "headers": {"content-type": FORM, "authorization": "Basic bm8="},
        },
    ),
]


@pytest.mark.parametrize(("path", "request_args"), ERROR_CASES)
async def test_lean_cycle_answers_errors_like_the_asgi_path(
    path: str, request_args: dict[str, Any]
) -> None:
    provider = await _provider()
    asgi = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=build_app(provider.settings, provider=provider)),
        base_url=provider.issuer,
    )
    async with _serving(provider) as served, asgi:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{served.port}") as client:
            lean = await client.post(path, **request_args)
            assert [type(cycle) for cycle in served.cycles()] == [LeanPostCycle]
        through_asgi = await asgi.post(path, **request_args)
    assert lean.status_code >= 400
    assert (lean.status_code, lean.content) == (through_asgi.status_code, through_asgi.content)
    assert _without_per_response_headers(lean) == _without_per_response_headers(through_asgi)
    assert lean.headers["date"]  # uvicorn's default header is kept
    assert len(lean.headers["x-request-id"]) == 16


async def test_successful_bc_authorize_has_the_same_headers_and_fields() -> None:
    provider = await _provider()
    asgi = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=build_app(provider.settings, provider=provider)),
        base_url=provider.issuer,
    )
    request_args: dict[str, Any] = {
        "content": BC_AUTHORIZE,
        "headers": {"content-type": FORM, "authorization": basic("rp-1"), "x-request-id": "rq-7"},
    }
    async with _serving(provider) as served, asgi:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{served.port}") as client:
            lean = await client.post("/bc-authorize", **request_args)
        through_asgi = await asgi.post("/bc-authorize", **request_args)
    assert lean.status_code == through_asgi.status_code == 200
    assert (
        lean.json().keys()
        == through_asgi.json().keys()
        == {"auth_req_id", "expires_in", "interval"}
    )
    assert (
        _without_per_response_headers(lean).keys()
        == _without_per_response_headers(through_asgi).keys()
    )
    assert lean.headers["x-request-id"] == "rq-7"  # a safe client id is echoed


async def test_pipelined_requests_are_answered_in_order_on_one_connection() -> None:
    """Two hot POSTs and a GET in one write: the GET goes through uvicorn's own cycle, queued
    behind the lean ones, and the answers come back in the order asked."""
    async with _serving(await _provider()) as served:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        writer.write(
            _post("/token", b"grant_type=nope")
            + _post("/bc-authorize", BC_AUTHORIZE)
            + b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n"
        )
        await writer.drain()
        answers = [await read_response(reader) for _ in range(3)]
        writer.close()
    assert [head.split(b"\r\n")[0] for head, _ in answers] == [
        b"HTTP/1.1 400 Bad Request", b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK",
    ]  # fmt: skip
    assert json.loads(answers[0][1])["error"] == "unsupported_grant_type"
    assert "auth_req_id" in json.loads(answers[1][1])
    assert json.loads(answers[2][1]) == {"status": "ok"}


async def test_connection_close_and_http_1_0_close_after_the_answer() -> None:
    async with _serving(await _provider()) as served:
        for extra, request_line in (("connection: close", None), (None, "HTTP/1.0")):
            reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
            raw = _post("/bc-authorize", BC_AUTHORIZE, *([extra] if extra else []))
            if request_line:
                raw = raw.replace(b"HTTP/1.1", request_line.encode(), 1)
            writer.write(raw)
            await writer.drain()
            head, body = await read_response(reader)
            assert head.startswith(b"HTTP/1.1 200")
            assert b"\r\nconnection: close\r\n" in head
            assert "auth_req_id" in json.loads(body)
            assert await reader.read() == b""  # closed by the server
            writer.close()


async def test_body_in_pieces_after_100_continue() -> None:
    async with _serving(await _provider()) as served:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        head_only = _post("/bc-authorize", BC_AUTHORIZE, "expect: 100-continue")
        head_only = head_only[: -len(BC_AUTHORIZE)]
        writer.write(head_only)
        await writer.drain()
        assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        for piece in (BC_AUTHORIZE[:10], BC_AUTHORIZE[10:]):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.05)
        head, body = await read_response(reader)
        writer.close()
    assert head.startswith(b"HTTP/1.1 200")
    assert "auth_req_id" in json.loads(body)


async def test_chunked_body_past_the_limit_is_413_and_the_connection_still_serves() -> None:
    """No content-length to refuse up front: the limit applies as the chunks arrive."""
    async with _serving(await _provider()) as served:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        chunk = b"x" * 1500
        writer.write(
            f"POST /token HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: {FORM}\r\n"
            "transfer-encoding: chunked\r\n\r\n".encode()
            + b"%x\r\n%s\r\n" % (len(chunk), chunk)
        )
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunk), chunk))
        await writer.drain()
        head, body = await read_response(reader)
        assert head.startswith(b"HTTP/1.1 413")
        assert json.loads(body)["error"] == "payload_too_large"
        writer.write(_post("/token", b"grant_type=nope"))
        await writer.drain()
        head, _ = await read_response(reader)
        assert head.startswith(b"HTTP/1.1 400")
        writer.close()


async def test_client_gone_before_the_body_is_counted_and_the_server_serves_on() -> None:
    async with _serving(await _provider()) as served:
        before = _requests_counted("/token", CLIENT_CLOSED)
        _, writer = await asyncio.open_connection("127.0.0.1", served.port)
        writer.write(_post("/token", b"grant_type=nope")[:-4])  # four bytes of body missing
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()
        for _ in range(100):
            if _requests_counted("/token", CLIENT_CLOSED) > before:
                break
            await asyncio.sleep(0.01)
        assert _requests_counted("/token", CLIENT_CLOSED) == before + 1
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{served.port}") as client:
            answer = await client.post(
                "/token", content=b"grant_type=nope", headers={"content-type": FORM}
            )
    assert answer.json()["error"] == "invalid_client"  # answered, no client authentication


async def test_each_answer_is_counted_and_logged_once(capsys: pytest.CaptureFixture[str]) -> None:
    from backchannel.web.logs import configure_logging

    configure_logging("info", json_logs=True)
    async with _serving(await _provider()) as served:
        before = _requests_counted("/bc-authorize", 200)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{served.port}") as client:
            answer = await client.post(
                "/bc-authorize",
                content=BC_AUTHORIZE,
                headers={"content-type": FORM, "authorization": basic("rp-1")},
            )
    assert answer.status_code == 200
    assert _requests_counted("/bc-authorize", 200) == before + 1
    lines = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if '"request"' in line
    ]
    access = [line for line in lines if line.get("event") == "request"]
    assert len(access) == 1
    assert access[0]["path"] == "/bc-authorize"
    assert access[0]["status"] == 200
    assert access[0]["request_id"] == answer.headers["x-request-id"]
