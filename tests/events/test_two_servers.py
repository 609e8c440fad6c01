"""Two `backchannel serve` processes on one PostgreSQL database (issue 5, "How it is
tested"): a long poll held by server A is answered within 100 ms of an approval made
through server B, carried by LISTEN/NOTIFY (item 93)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.databases import (
    PG_UNAVAILABLE,
    create_postgres_database,
    drop_postgres_database,
    postgres_available,
    run_in_own_loop,
)
from tests.support.http import free_port, run_cli, running_server, server_env

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
CIBA_GRANT = "urn:openid:params:grant-type:ciba"


@pytest.fixture
def database_url() -> Iterator[str]:
    if not postgres_available():
        pytest.skip(PG_UNAVAILABLE)
    url = run_in_own_loop(create_postgres_database)
    try:
        yield url
    finally:
        run_in_own_loop(lambda: drop_postgres_database(url))


def shared_env(tmp_path: Path, port: int, issuer: str, database_url: str) -> dict[str, str]:
    # One issuer, one database, one master secret file: two processes of one deployment.
    env = server_env(
        tmp_path,
        port,
        BACKCHANNEL_DATABASE__URL=database_url,
        BACKCHANNEL_EVENTS__BACKEND="postgres",
        BACKCHANNEL_CIBA__LONG_POLL_SECONDS="10",
        BACKCHANNEL_TESTING__AUTOMATED_APPROVAL="true",
    )
    env["BACKCHANNEL_ISSUER"] = issuer
    return env


def long_poll_waiters(base: str) -> float:
    for line in httpx.get(f"{base}/metrics").text.splitlines():
        if line.startswith("backchannel_long_poll_waiters "):
            return float(line.split()[1])
    raise AssertionError("no backchannel_long_poll_waiters in /metrics")


def test_long_poll_on_a_is_answered_within_100ms_of_an_approval_through_b(
    tmp_path: Path, database_url: str
) -> None:
    port_a, port_b = free_port(), free_port()
    base_a, base_b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
    env_a = shared_env(tmp_path, port_a, base_a, database_url)
    env_b = shared_env(tmp_path, port_b, base_a, database_url)
    for args in (("db", "upgrade"), ("users", "add", "--username", "ada", "--name", "Ada")):
        done = run_cli(env_a, *args)
        assert done.returncode == 0, done.stderr
    added = run_cli(env_a, "clients", "add", "--name", "RP", "--delivery-mode", "poll",
                    "--scope", "openid profile", "--json")  # fmt: skip
    assert added.returncode == 0, added.stderr
    client = json.loads(added.stdout)
    auth = (client["client_id"], client["client_secret"])

    with running_server(env_a), running_server(env_b):
        started = httpx.post(
            f"{base_a}/bc-authorize", data={"scope": "openid", "login_hint": "ada"}, auth=auth
        )
        assert started.status_code == 200, started.text
        auth_req_id = started.json()["auth_req_id"]
        answer: dict[str, object] = {}

        def long_poll() -> None:
            response = httpx.post(
                f"{base_a}/token",
                data={"grant_type": CIBA_GRANT, "auth_req_id": auth_req_id},
                auth=auth,
                timeout=30,
            )
            answer["at"] = time.monotonic()
            answer["response"] = response

        poller = threading.Thread(target=long_poll)
        poll_started = time.monotonic()
        poller.start()
        deadline = time.monotonic() + 5
        while long_poll_waiters(base_a) < 1:
            assert time.monotonic() < deadline, "server A never held the poll"
            time.sleep(0.02)
        assert long_poll_waiters(base_b) == 0
        approved = httpx.post(
            f"{base_b}/test/ciba/approve", data={"auth_req_id": auth_req_id, "action": "allow"}
        )
        approved_at = time.monotonic()
        poller.join(timeout=15)

    assert approved.status_code == 200, approved.text
    response = answer["response"]
    assert isinstance(response, httpx.Response)
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "Bearer"
    assert "id_token" in response.json()
    assert isinstance(answer["at"], float)
    after_approval = answer["at"] - approved_at
    assert after_approval < 0.1, f"answered {after_approval * 1000:.0f} ms after the approval"
    assert answer["at"] - poll_started < 10  # woken, not timed out
