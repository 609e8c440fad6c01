"""The access line: one JSON line per HTTP request, the fields structlog's processor chain
would render (``configure_logging``), written directly; its request id is the response's."""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from backchannel.web.logs import JsonAccessLog, configure_logging, iso_utc
from tests.support.http import asgi_client
from tests.support.provider import make_provider

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$")


@pytest.fixture(autouse=True)
def _json_logs_after() -> Iterator[None]:
    yield
    configure_logging()  # the default other tests expect


def structlog_rendering(event_kw: dict[str, Any]) -> dict[str, Any]:
    """What ``log.info("request", **event_kw)`` renders with ``configure_logging``'s chain."""
    configure_logging()
    processors = structlog.get_config()["processors"]
    event: Any = {**event_kw, "event": "request"}
    for processor in processors:
        event = processor(None, "info", event)
    rendered: dict[str, Any] = json.loads(event)
    return rendered


def access_lines(out: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "request"]


def test_line_has_structlogs_fields_in_structlogs_order(
    capsys: pytest.CaptureFixture[str],
) -> None:
    fields: dict[str, Any] = {
        "method": "POST",
        "path": "/token",
        "status": 400,
        "duration_ms": 0.12,
    }
    structlog.contextvars.bind_contextvars(request_id="req-7", client_id=object())
    try:
        expected = structlog_rendering(fields)
        capsys.readouterr()
        JsonAccessLog().request(**fields)
        out = capsys.readouterr().out
    finally:
        structlog.contextvars.unbind_contextvars("request_id", "client_id")
    assert out.count("\n") == 1 and out.endswith("}\n")
    written = json.loads(out)
    assert list(written) == list(expected)
    assert {k: v for k, v in written.items() if k != "timestamp"} == {
        k: v for k, v in expected.items() if k != "timestamp"
    }
    assert written["client_id"].startswith("<object")  # default=str, as the renderer does
    assert ISO_UTC.match(written["timestamp"]) and ISO_UTC.match(expected["timestamp"])


@pytest.mark.parametrize(
    "nanoseconds",
    [
        0,
        1_700_000_000_000_000_000,
        1_700_000_000_000_999,
        1_700_000_000_123_456_789,
        1_700_000_001_999_999_999,
        4_102_444_799_000_001_000,
    ],
)
def test_timestamp_is_isoformat_in_utc_with_z(nanoseconds: int) -> None:
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
    moment = epoch + datetime.timedelta(microseconds=nanoseconds // 1000)
    assert iso_utc(nanoseconds) == moment.isoformat().replace("+00:00", "Z")


@pytest.mark.anyio
async def test_each_request_writes_one_line_with_its_request_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async with asgi_client(await make_provider()) as client:
        capsys.readouterr()
        token = await client.post("/token?x=secret-in-query", content=b"grant_type=nope")
        health = await client.get("/healthz", headers={"x-request-id": "abc-123"})
    first, second = access_lines(capsys.readouterr().out)
    assert list(first) == [
        "method", "path", "status", "duration_ms", "event", "request_id", "level", "timestamp"
    ]  # fmt: skip
    assert first["method"] == "POST" and first["path"] == "/token"
    assert first["status"] == token.status_code == 400
    assert first["request_id"] == token.headers["x-request-id"]
    assert first["level"] == "info" and isinstance(first["duration_ms"], float)
    assert (second["path"], second["status"], second["request_id"]) == ("/healthz", 200, "abc-123")
    assert health.headers["x-request-id"] == "abc-123"


@pytest.mark.anyio
async def test_no_access_line_above_info_and_a_console_line_without_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    quiet = await make_provider(logging={"level": "warning"})
    async with asgi_client(quiet) as client:
        capsys.readouterr()
        assert (await client.get("/healthz")).status_code == 200
    assert capsys.readouterr().out == ""
    console = await make_provider(logging={"json_logs": False})
    async with asgi_client(console) as client:
        capsys.readouterr()
        request_id = (await client.get("/healthz")).headers["x-request-id"]
    out = capsys.readouterr().out
    assert "request" in out and "path=/healthz" in out and f"request_id={request_id}" in out
    assert not out.lstrip().startswith("{")
