"""``FastPostRoutes``: the hot POST endpoints answered without Starlette's stack give the
same responses as the Starlette endpoint for the same handler."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from backchannel.protocol.endpoints import backchannel, token
from backchannel.protocol.http import HttpResponse
from backchannel.protocol.provider import Provider
from backchannel.web.adapter import Handler, ProviderSlot, endpoint, to_response
from backchannel.web.fast_routes import RawResponse, raw_response
from backchannel.web.server import build_app
from tests.support.http import asgi_client
from tests.support.provider import make_provider

pytestmark = pytest.mark.anyio

FORM = {"content-type": "application/x-www-form-urlencoded"}
CASES: list[tuple[str, Handler, dict[str, Any]]] = [
    ("/token", token.handle, {"content": b"grant_type=nope", "headers": FORM}),
    ("/token", token.handle, {"content": b"{}", "headers": {"content-type": "application/json"}}),
    ("/token", token.handle, {"content": b"a=1&a=2", "headers": FORM}),
    ("/bc-authorize", backchannel.handle, {"content": b"scope=openid", "headers": FORM}),
    (
        "/bc-authorize",
        backchannel.handle,
        {"content": b"scope=openid", "headers": {**FORM, "authorization": "Basic bm8="}},
    ),
]


def _starlette_only(provider: Provider, path: str, handler: Handler) -> httpx.AsyncClient:
    app = Starlette(
        routes=[Route(path, endpoint(ProviderSlot(provider), handler), methods=["POST"])]
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=provider.issuer)


def _comparable(response: httpx.Response) -> tuple[int, bytes, dict[str, str]]:
    headers = {k: v for k, v in response.headers.items() if k != "x-request-id"}
    return response.status_code, response.content, headers


@pytest.mark.parametrize(("path", "handler", "request_args"), CASES)
async def test_fast_path_answers_like_the_starlette_endpoint(
    path: str, handler: Handler, request_args: dict[str, Any]
) -> None:
    provider = await make_provider()
    async with asgi_client(provider) as fast, _starlette_only(provider, path, handler) as slow:
        fast_response = await fast.post(path, **request_args)
        slow_response = await slow.post(path, **request_args)
    assert fast_response.status_code >= 400
    assert _comparable(fast_response) == _comparable(slow_response)
    assert len(fast_response.headers["x-request-id"]) == 16


async def test_hot_path_failure_is_a_json_500_with_the_request_id() -> None:
    provider = await make_provider()
    app = build_app(provider.settings)  # no provider, no factory: the slot stays empty
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=provider.issuer) as client:
        response = await client.post(
            "/token", content=b"grant_type=x", headers={**FORM, "x-request-id": "req-1"}
        )
    assert response.status_code == 500
    assert response.json()["error"] == "server_error"
    assert response.headers["x-request-id"] == "req-1"
    assert response.headers["cache-control"] == "no-store"


async def test_other_methods_and_paths_still_reach_starlette() -> None:
    async with asgi_client(await make_provider()) as client:
        wrong_method = await client.put("/token", content=b"")
        trailing_slash = await client.post("/token/x", content=b"", headers=FORM)
    assert wrong_method.status_code == 405
    assert trailing_slash.status_code == 404
    assert trailing_slash.json()["error"] == "not_found"


@pytest.mark.parametrize(
    "result",
    [
        HttpResponse.json({"auth_req_id": "x", "expires_in": 120}),
        HttpResponse.json({"error": "invalid_client"}, 401, no_store=True),
        HttpResponse(401, {"error": "x"}, {"WWW-Authenticate": 'Basic realm="bc"'}),
        HttpResponse(204, None),
        HttpResponse(304, None, {"ETag": '"1"'}),
        HttpResponse(200, "plain words", media_type="text/plain"),
        HttpResponse(200, b"<p>", media_type="text/html; charset=latin-1"),
        HttpResponse(200, b"\x00\x01", media_type="application/octet-stream"),
        HttpResponse(200, "{}", {"Content-Type": "application/jwt"}, media_type="text/plain"),
        HttpResponse(200, b"abc", {"Content-Length": "3"}, media_type="text/plain"),
        HttpResponse(200, None),
    ],
    ids=lambda result: f"{result.status}-{result.media_type}-{sorted(result.headers)}",
)
def test_raw_response_is_what_starlette_would_send(result: HttpResponse) -> None:
    """The lean cycle's and the fast routes' answers (``raw_response``) have the status,
    headers (same order) and body of ``to_response``'s Starlette ``Response``."""
    assert raw_response(result) == RawResponse.of(to_response(result))
