"""The SDK and the CLI authenticator against `backchannel serve` in a subprocess (issue
item 7): SSE delivers a new request within a second; approve → tokens, deny →
access_denied."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from backchannel.authenticator.assurance import ACR_DEVICE_KEY
from backchannel.device import DeviceClient, DeviceEvent
from backchannel.protocol import jose
from tests.support.http import CLI, free_port, run_cli, running_server, server_env

CIBA_GRANT = "urn:openid:params:grant-type:ciba"
DEMO = ("demo-client", "demo-secret")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    env = server_env(tmp_path, port)
    with running_server(env, "--seed-demo"):
        yield f"http://127.0.0.1:{port}", env


def _enrol_code(env: dict[str, str]) -> str:
    result = run_cli(env, "devices", "enrol-code", "demo", "--json")
    assert result.returncode == 0, result.stderr
    issued = json.loads(result.stdout)
    assert issued["url"].endswith(f"/authenticator/#enrol={issued['code']}")
    code: str = issued["code"]
    return code


def _authorize(base: str, message: str) -> str:
    response = httpx.post(
        f"{base}/bc-authorize",
        data={"scope": "openid profile", "login_hint": "demo", "binding_message": message},
        auth=DEMO,
    )
    assert response.status_code == 200, response.text
    auth_req_id: str = response.json()["auth_req_id"]
    return auth_req_id


def _poll(base: str, auth_req_id: str) -> httpx.Response:
    data = {"grant_type": CIBA_GRANT, "auth_req_id": auth_req_id}
    return httpx.post(f"{base}/token", data=data, auth=DEMO)


@pytest.mark.anyio
async def test_sdk_receives_over_sse_within_a_second_and_approves_then_denies(
    served: tuple[str, dict[str, str]],
) -> None:
    base, env = served
    device = await DeviceClient.enrol_with_code(base, _enrol_code(env), "SDK")
    events: asyncio.Queue[DeviceEvent] = asyncio.Queue()

    async def listen() -> None:
        async for event in device.listen():
            await events.put(event)

    listener = asyncio.create_task(listen())
    try:
        await asyncio.sleep(0.3)  # the stream is open before the request is made
        started = time.monotonic()
        auth_req_id = await asyncio.to_thread(_authorize, base, "SSE 1")
        event = await asyncio.wait_for(events.get(), 1.0)
        assert time.monotonic() - started < 1.0
        assert event.kind == "request"
        consent = await device.get(event.request_id)
        assert consent.document["binding_message"] == "SSE 1"
        assert await device.approve(consent) == "approved"
        tokens = await asyncio.to_thread(_poll, base, auth_req_id)
        assert tokens.status_code == 200, tokens.text
        assert jose.peek_claims(tokens.json()["id_token"])["acr"] == ACR_DEVICE_KEY
        resolved = await asyncio.wait_for(events.get(), 2.0)
        assert resolved == DeviceEvent("resolved", event.request_id)

        denied_id = await asyncio.to_thread(_authorize, base, "SSE 2")
        second = await asyncio.wait_for(events.get(), 1.0)
        assert await device.deny(await device.get(second.request_id)) == "denied"
        refused = await asyncio.to_thread(_poll, base, denied_id)
        assert refused.status_code == 400 and refused.json()["error"] == "access_denied"
    finally:
        listener.cancel()
        await device.aclose()


def test_cli_authenticator_enrols_listens_approves_and_denies(
    served: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    base, env = served
    state, key = tmp_path / "device.json", tmp_path / "device.pem"
    files = ("--state", str(state))
    enrolled = run_cli(
        env, "authenticator", "enrol", "--code", _enrol_code(env), "--server", base,
        "--key-file", str(key), *files,
    )  # fmt: skip
    assert enrolled.returncode == 0, enrolled.stderr
    assert key.stat().st_mode & 0o777 == 0o600 and state.stat().st_mode & 0o777 == 0o600
    assert "PRIVATE KEY" in key.read_text() and "PRIVATE" not in state.read_text()

    listener = subprocess.Popen(
        [*CLI, "authenticator", "listen", "--once", *files],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(1.0)
        approved_id = _authorize(base, "CLI 1")
        out, err = listener.communicate(timeout=30)
    finally:
        listener.kill()
    shown = json.loads(out.strip().splitlines()[-1])
    assert shown["content"]["binding_message"] == "CLI 1", err
    approved = run_cli(env, "authenticator", "approve", shown["request_id"], *files)
    assert approved.returncode == 0 and approved.stdout.strip() == "approved", approved.stderr
    assert _poll(base, approved_id).status_code == 200

    denied_id = _authorize(base, "CLI 2")
    listed = run_cli(env, "requests", "list", "--json")
    assert listed.returncode == 0
    inbox = httpx.get(
        f"{base}/authenticator/api/inbox",
        headers={"authorization": f"Bearer {json.loads(state.read_text())['device_token']}"},
    ).json()["requests"]
    denied = run_cli(env, "authenticator", "deny", inbox[0]["request_id"], *files)
    assert denied.stdout.strip() == "denied", denied.stderr
    assert _poll(base, denied_id).json()["error"] == "access_denied"

    devices = run_cli(env, "devices", "list", "demo", "--json")
    [device] = json.loads(devices.stdout)
    assert device["state"] == "active"
    assert run_cli(env, "devices", "revoke", device["device_id"]).returncode == 0
    after = run_cli(env, "authenticator", "approve", inbox[0]["request_id"], *files)
    assert after.returncode != 0 and "revoked" in after.stderr
