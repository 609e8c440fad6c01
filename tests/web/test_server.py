"""The HTTP shell: JSON errors for every failure, body limit, request ids, health."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from backchannel.settings import DatabaseSettings
from backchannel.storage import open_storage
from backchannel.storage.migrate import upgrade
from tests.support.http import asgi_client
from tests.support.provider import make_provider

pytestmark = pytest.mark.anyio


async def test_unknown_route_is_a_json_404() -> None:
    async with asgi_client(await make_provider()) as client:
        response = await client.get("/no/such/thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == "not_found"


async def test_wrong_method_is_a_json_405() -> None:
    async with asgi_client(await make_provider()) as client:
        response = await client.get("/token")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


async def test_body_over_64_kib_is_a_json_413() -> None:
    async with asgi_client(await make_provider()) as client:
        response = await client.post(
            "/token",
            content=b"a=" + b"x" * 70000,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


async def test_streamed_body_over_the_limit_is_refused_without_content_length() -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(20):
            yield b"x" * 4096

    async with asgi_client(await make_provider()) as client:
        response = await client.post(
            "/bc-authorize",
            content=chunks(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 413


async def test_every_response_carries_a_request_id_and_echoes_a_safe_one() -> None:
    async with asgi_client(await make_provider()) as client:
        generated = await client.get("/healthz")
        echoed = await client.get("/healthz", headers={"x-request-id": "abc-123"})
        unsafe = await client.get("/healthz", headers={"x-request-id": "a b\nc"})
    assert len(generated.headers["x-request-id"]) == 16
    assert echoed.headers["x-request-id"] == "abc-123"
    assert unsafe.headers["x-request-id"] != "a b\nc"


async def test_healthz_and_readyz() -> None:
    async with asgi_client(await make_provider()) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


async def test_readyz_is_503_when_the_database_is_unreachable() -> None:
    database = DatabaseSettings(url="postgresql+asyncpg://postgres@127.0.0.1:1/nothing")
    storage = await open_storage(database)
    provider = await make_provider()
    provider.storage = storage
    try:
        async with asgi_client(provider) as client:
            response = await client.get("/readyz")
    finally:
        await storage.close()
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


async def test_unexpected_failure_is_a_json_500_with_an_error_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/broken.db")
    await upgrade(database)
    storage = await open_storage(database)
    provider = await make_provider(storage=storage)
    engine = sa.create_engine(f"sqlite:///{tmp_path}/broken.db")
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE clients"))
    engine.dispose()
    try:
        async with asgi_client(provider) as client:
            response = await client.post(
                "/token",
                data={"grant_type": "refresh_token", "refresh_token": "x"},
                auth=("some-client", "s3cr3t-value-xyz"),
            )
    finally:
        await storage.close()
    assert response.status_code == 500
    body = response.json()
    assert body["error"] == "server_error"
    error_id = body["error_description"].rsplit(" ", 1)[-1]
    assert "Traceback" not in response.text
    logged = capsys.readouterr().out
    assert error_id in logged
    assert "s3cr3t-value-xyz" not in logged
