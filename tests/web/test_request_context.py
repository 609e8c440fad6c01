"""``RequestContext``, the one layer around every request: request id, the JSON 500 when the
app fails before answering, the access line and the request metrics all see one status."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from starlette.datastructures import URL
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from backchannel.web.fast_routes import RequestUrls
from backchannel.web.logs import configure_logging
from backchannel.web.middleware import RequestContext

pytestmark = pytest.mark.anyio


class Boom(Exception):
    pass


def failing_app(path: str, *, after_start: bool) -> Any:
    route = Route(path, Response)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = route
        if after_start:
            await send({"type": "http.response.start", "status": 202, "headers": []})
            await send({"type": "http.response.body", "body": b""})
        raise Boom("the app failed")

    return app


def counted(endpoint: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "backchannel_http_requests_total", {"endpoint": endpoint, "status": status}
    )
    return value or 0.0


def timed(endpoint: str) -> float:
    value = REGISTRY.get_sample_value(
        "backchannel_http_request_duration_seconds_count", {"endpoint": endpoint}
    )
    return value or 0.0


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://op.test")


def access_lines(out: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "request"]


async def test_failure_before_the_answer_is_one_500_logged_and_counted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging()
    app = RequestContext(failing_app("/fails-early", after_start=False), access_log=True,
                         metrics=True)  # fmt: skip
    before, before_timed = counted("/fails-early", "500"), timed("/fails-early")
    async with client(app) as http:
        capsys.readouterr()
        response = await http.post("/fails-early", headers={"x-request-id": "id-500"})
    assert response.status_code == 500
    assert response.json()["error"] == "server_error"
    assert response.headers["x-request-id"] == "id-500"
    assert response.headers["cache-control"] == "no-store"
    [line] = access_lines(capsys.readouterr().out)
    assert (line["path"], line["status"], line["request_id"]) == ("/fails-early", 500, "id-500")
    assert counted("/fails-early", "500") - before == 1
    assert timed("/fails-early") - before_timed == 1


async def test_failure_after_the_answer_started_keeps_its_status(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging()
    app = RequestContext(failing_app("/fails-late", after_start=True), access_log=True,
                         metrics=True)  # fmt: skip
    before = counted("/fails-late", "202")
    async with client(app) as http:
        capsys.readouterr()
        response = await http.get("/fails-late")
    assert response.status_code == 202
    assert len(response.headers["x-request-id"]) == 16
    [line] = access_lines(capsys.readouterr().out)
    assert line["status"] == 202
    assert counted("/fails-late", "202") - before == 1
    assert counted("/fails-late", "500") == 0


async def test_without_metrics_and_access_log_the_request_id_stays(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging()
    app = RequestContext(failing_app("/fails-quietly", after_start=False), access_log=False,
                         metrics=False)  # fmt: skip
    async with client(app) as http:
        capsys.readouterr()
        response = await http.get("/fails-quietly")
    assert response.status_code == 500
    assert len(response.headers["x-request-id"]) == 16
    assert access_lines(capsys.readouterr().out) == []
    assert counted("/fails-quietly", "500") == 0


def http_scope(headers: list[tuple[bytes, bytes]], **overrides: Any) -> dict[str, Any]:
    scope: dict[str, Any] = {"type": "http", "scheme": "http", "path": "/token",
                             "query_string": b"", "server": ("127.0.0.1", 8000),
                             "headers": headers}  # fmt: skip
    scope.update(overrides)
    return scope


SCOPES = [
    http_scope([(b"host", b"op.example.test")]),
    http_scope([(b"host", b"op.example.test:8443")], scheme="https"),
    http_scope([(b"host", b"bad host/x")]),  # refused Host: the server address instead
    http_scope([(b"host", b"[::1]:8000")]),
    http_scope([], server=("::1", 80)),
    http_scope([], server=None),
    http_scope([(b"host", b"a"), (b"host", b"b")]),
    http_scope([(b"host", b"op")], query_string=b"a=1&b=%20#frag"),
    http_scope([(b"host", b"op")], path="//token"),
]


@pytest.mark.parametrize("scope", SCOPES)
def test_request_urls_are_starlettes(scope: dict[str, Any]) -> None:
    urls = RequestUrls()
    expected = URL(scope=scope)
    assert urls.url_and_query(scope) == (str(expected), expected.query)
    assert urls.url_and_query(scope) == (str(expected), expected.query)  # remembered


def test_request_urls_tell_hosts_apart_and_stay_bounded() -> None:
    urls = RequestUrls(limit=4)
    for n in range(10):
        scope = http_scope([(b"host", f"host-{n}".encode())])
        assert urls.url_and_query(scope) == (f"http://host-{n}/token", "")
    assert len(urls._known) <= 4


def test_request_urls_refuse_what_starlette_refuses() -> None:
    scope = http_scope([(b"host", b"op")], query_string=b"\xff")
    with pytest.raises(UnicodeDecodeError):
        RequestUrls().url_and_query(scope)
