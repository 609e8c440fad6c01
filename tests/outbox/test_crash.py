"""Pending deliveries survive ``kill -9`` (issue 5 item 3): a real ``backchannel serve``
with its in-server worker, a receiver that fails every call, SIGKILL, then a restart with
the receiver answering: every notification arrives exactly once."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.support.http import CLI, free_port, run_cli, running_server, server_env
from tests.support.receiver import Reply, running_receiver

REQUESTS = 20
NOTIFICATION_TOKEN = "crash-test-notification-token"


def _env(tmp_path: Path, port: int) -> dict[str, str]:
    return server_env(
        tmp_path,
        port,
        BACKCHANNEL_TESTING__AUTOMATED_APPROVAL="true",
        BACKCHANNEL_OUTBOX__BACKOFF_BASE_SECONDS="0.2",
        BACKCHANNEL_OUTBOX__BACKOFF_MAX_SECONDS="0.5",
        BACKCHANNEL_OUTBOX__MAX_ATTEMPTS="20",
        BACKCHANNEL_OUTBOX__LEASE_SECONDS="2",
        BACKCHANNEL_OUTBOX__POLL_INTERVAL_SECONDS="0.1",
        BACKCHANNEL_CIBA__DEFAULT_EXPIRES_IN="300",
    )


def _ping_client(env: dict[str, str], url: str) -> tuple[str, str]:
    user = run_cli(env, "users", "add", "--username", "ada", "--name", "Ada")
    assert user.returncode == 0, user.stderr
    added = run_cli(env, "clients", "add", "--name", "RP", "--delivery-mode", "ping",
                    "--notification-endpoint", url, "--scope", "openid", "--json")  # fmt: skip
    assert added.returncode == 0, added.stderr
    client = json.loads(added.stdout)
    return client["client_id"], client["client_secret"]


def _approved_requests(base: str, auth: tuple[str, str]) -> list[str]:
    ids = []
    for _ in range(REQUESTS):
        started = httpx.post(
            f"{base}/bc-authorize",
            data={
                "scope": "openid",
                "login_hint": "ada",
                "client_notification_token": NOTIFICATION_TOKEN,
            },
            auth=auth,
        )
        assert started.status_code == 200, started.text
        auth_req_id = started.json()["auth_req_id"]
        approved = httpx.post(
            f"{base}/test/ciba/approve", data={"auth_req_id": auth_req_id, "action": "allow"}
        )
        assert approved.status_code == 200, approved.text
        ids.append(auth_req_id)
    return ids


@pytest.mark.slow
def test_item_3_deliveries_pending_at_sigkill_go_out_exactly_once_after_restart(
    tmp_path: Path,
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = _env(tmp_path, port)
    with running_receiver() as receiver:
        receiver.on("/cb", Reply(503))
        assert run_cli(env, "db", "upgrade").returncode == 0
        auth = _ping_client(env, receiver.url("/cb"))
        with running_server(env) as server:
            ids = _approved_requests(base, auth)
            receiver.wait_calls_sync(REQUESTS, path="/cb")  # the worker is trying
            server.send_signal(signal.SIGKILL)
            server.wait(timeout=10)
        time.sleep(0.3)  # nothing in flight from the dead process can still arrive
        receiver.clear()
        receiver.on("/cb", Reply(204))
        with running_server(env):
            calls = receiver.wait_calls_sync(REQUESTS, path="/cb", timeout=30)
            time.sleep(1.0)  # room for any duplicate to show up
            calls = receiver.calls_to("/cb")
    delivered = Counter(call.json()["auth_req_id"] for call in calls)
    assert delivered == Counter(ids)  # every one, exactly once
    assert {c.headers["authorization"] for c in calls} == {f"Bearer {NOTIFICATION_TOKEN}"}


@pytest.mark.slow
def test_item_3_backchannel_worker_delivers_when_the_server_does_not(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**_env(tmp_path, port), "BACKCHANNEL_OUTBOX__RUN_IN_SERVER": "false"}
    with running_receiver() as receiver:
        assert run_cli(env, "db", "upgrade").returncode == 0
        auth = _ping_client(env, receiver.url("/cb"))
        with running_server(env):
            ids = _approved_requests(base, auth)
            time.sleep(1.0)
            assert receiver.calls_to("/cb") == []  # the server alone does not deliver
            worker = subprocess.Popen(
                [*CLI, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            try:
                calls = receiver.wait_calls_sync(REQUESTS, path="/cb", timeout=30)
            finally:
                worker.terminate()
                worker.wait(timeout=15)
    assert Counter(c.json()["auth_req_id"] for c in calls) == Counter(ids)
