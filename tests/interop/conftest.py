"""A real `backchannel serve` in a subprocess with the automated approval hook, a poll
client and a user, shared by the interop tests of one module."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.http import free_port, run_cli, running_server, server_env


@dataclass(frozen=True)
class LiveServer:
    issuer: str
    client_id: str
    client_secret: str
    login_hint: str


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    var_dir: Path = tmp_path_factory.mktemp("interop")
    port = free_port()
    env = server_env(
        var_dir,
        port,
        BACKCHANNEL_TESTING__AUTOMATED_APPROVAL="true",
        BACKCHANNEL_CIBA__INTERVAL="1",
    )
    added = run_cli(
        env,
        "clients",
        "add",
        "--name",
        "Interop",
        "--delivery-mode",
        "poll",
        "--scope",
        "openid profile",
        "--json",
    )
    assert added.returncode == 0, added.stderr
    client = json.loads(added.stdout)
    user = run_cli(env, "users", "add", "--username", "interop", "--name", "Interop User")
    assert user.returncode == 0, user.stderr
    with running_server(env):
        yield LiveServer(
            issuer=env["BACKCHANNEL_ISSUER"],
            client_id=client["client_id"],
            client_secret=client["client_secret"],
            login_hint="interop",
        )
