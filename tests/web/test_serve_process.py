"""`backchannel serve` as a real process on a loopback port: migrates, seeds the demo,
answers over HTTP, logs JSON lines without secrets."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.support.http import free_port, running_server, server_env

pytestmark = pytest.mark.slow


def test_serve_seeds_the_demo_and_answers_a_backchannel_request(tmp_path: Path) -> None:
    port = free_port()
    env = server_env(tmp_path, port)
    base = f"http://127.0.0.1:{port}"
    with running_server(env, "--seed-demo"):
        discovery = httpx.get(f"{base}/.well-known/openid-configuration").json()
        jwks = httpx.get(discovery["jwks_uri"]).json()
        ready = httpx.get(f"{base}/readyz")
        started = httpx.post(
            discovery["backchannel_authentication_endpoint"],
            data={"scope": "openid", "login_hint": "demo", "binding_message": "W4711"},
            auth=("demo-client", "demo-secret"),
        )
        pending = httpx.post(
            discovery["token_endpoint"],
            data={
                "grant_type": "urn:openid:params:grant-type:ciba",
                "auth_req_id": started.json()["auth_req_id"],
            },
            auth=("demo-client", "demo-secret"),
        )
    assert discovery["issuer"] == base
    assert {key["alg"] for key in jwks["keys"]} == {"RS256", "ES256"}
    assert all("d" not in key for key in jwks["keys"])
    assert ready.status_code == 200
    assert started.status_code == 200, started.text
    assert started.json()["expires_in"] == 120
    assert pending.status_code == 400
    assert pending.json()["error"] == "authorization_pending"
    assert (tmp_path / "backchannel.db").exists()
    assert (tmp_path / "master.key").stat().st_mode & 0o777 == 0o600

    log_lines = (tmp_path / f"server-{port}.log").read_text().splitlines()
    requests = [json.loads(line) for line in log_lines if line.startswith("{")]
    token_lines = [r for r in requests if r.get("path") == "/token"]
    assert token_lines and token_lines[0]["status"] == 400
    assert all("request_id" in r and "duration_ms" in r for r in token_lines)
    json_log = "\n".join(line for line in log_lines if line.startswith("{"))
    assert started.json()["auth_req_id"] not in "\n".join(log_lines)
    assert "demo-secret" not in json_log
    assert "ZGVtby1jbGllbnQ6ZGVtby1zZWNyZXQ" not in json_log  # the Basic credentials


def test_serve_with_two_workers_answers(tmp_path: Path) -> None:
    port = free_port()
    env = server_env(tmp_path, port)
    with running_server(env, "--workers", "2"):
        statuses = {httpx.get(f"http://127.0.0.1:{port}/readyz").status_code for _ in range(20)}
    assert statuses == {200}
