"""GET /metrics (issue 5 item 6): Prometheus text format, requests by route template and
status, pending-requests and long-poll gauges; no raw paths or secrets in the labels."""

from __future__ import annotations

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from backchannel.protocol.events import LocalEventBus, request_topic
from backchannel.protocol.provider import Provider
from tests.support.ciba import CIBA_GRANT, SECRET, add_client, add_user, basic, pending_request
from tests.support.clock import FakeClock
from tests.support.http import asgi_client
from tests.support.provider import make_provider

pytestmark = pytest.mark.anyio
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: httpx.AsyncClient) -> tuple[str, Samples]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return response.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def poll(client: httpx.AsyncClient, auth_req_id: str) -> httpx.Response:
    return await client.post(
        "/token",
        data={"grant_type": CIBA_GRANT, "auth_req_id": auth_req_id},
        headers={"authorization": basic("rp-1")},
    )


async def test_requests_are_counted_by_route_template_and_status() -> None:
    provider = await make_provider()
    rp = await add_client(provider)
    await add_user(provider)
    auth_req_id, _ = await pending_request(provider, rp)
    async with asgi_client(provider) as client:
        _, before = await scrape(client)
        assert (await poll(client, auth_req_id)).status_code == 400
        assert (await client.get("/.well-known/openid-configuration")).status_code == 200
        assert (await client.get(f"/nothing/{auth_req_id}")).status_code == 404
        text, after = await scrape(client)

    counter = "backchannel_http_requests_total"
    for endpoint, status in [("/token", "400"), ("/.well-known/openid-configuration", "200"),
                             ("unmatched", "404"), ("/metrics", "200")]:  # fmt: skip
        grown = value(after, counter, endpoint=endpoint, status=status) - value(
            before, counter, endpoint=endpoint, status=status
        )
        assert grown == 1, (endpoint, status)
    histogram = "backchannel_http_request_duration_seconds_count"
    assert (
        value(after, histogram, endpoint="/token") - value(before, histogram, endpoint="/token")
        == 1
    )
    endpoints = {dict(labels).get("endpoint") for name, labels in after if name == counter}
    assert all(e == "unmatched" or (e or "").startswith("/") for e in endpoints)
    assert "/nothing" not in text
    assert auth_req_id not in text
    assert SECRET not in text


async def test_pending_gauge_counts_pending_unexpired_requests() -> None:
    clock = FakeClock()
    provider = await make_provider(clock=clock)
    rp = await add_client(provider)
    await pending_request(provider, rp, expires_in=10)
    clock.advance(20)  # the first one is overdue, though still stored as pending
    await pending_request(provider, rp)
    await pending_request(provider, rp)
    async with asgi_client(provider) as client:
        _, samples = await scrape(client)
    assert value(samples, "backchannel_pending_requests") == 2


async def test_long_poll_gauge_counts_held_polls() -> None:
    provider = await make_provider(ciba={"long_poll_seconds": 10})
    rp = await add_client(provider)
    await add_user(provider)
    auth_req_id, request = await pending_request(provider, rp)
    held: list[float] = []
    answers: list[httpx.Response] = []
    async with asgi_client(provider) as client:

        async def long_poll() -> None:
            answers.append(await poll(client, auth_req_id))

        async with anyio.create_task_group() as group:
            group.start_soon(long_poll)
            await until_held(provider)
            _, during = await scrape(client)
            held.append(value(during, "backchannel_long_poll_waiters"))
            await provider.events.publish(request_topic(request.id_hash))
        _, after = await scrape(client)
    assert held == [1]
    assert value(after, "backchannel_long_poll_waiters") == 0
    assert answers[0].json()["error"] == "authorization_pending"


async def test_metrics_can_be_switched_off() -> None:
    provider = await make_provider(metrics={"enabled": False})
    async with asgi_client(provider) as client:
        response = await client.get("/metrics")
    assert response.status_code == 404


async def until_held(provider: Provider) -> None:
    assert isinstance(provider.events, LocalEventBus)
    with anyio.fail_after(2):
        while provider.events.waiting_on("request:") < 1:
            await anyio.sleep(0.002)
