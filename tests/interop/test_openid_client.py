"""openid-client 6 (npm) completes a CIBA poll flow against `backchannel serve`, verifying
the id_token signature (enableNonRepudiationChecks). The package is installed from the
lock file in this folder into a cache folder the first time the test runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.interop.conftest import LiveServer

HERE = Path(__file__).parent / "openid_client"
CACHE = Path(__file__).resolve().parents[2] / ".cache" / "openid-client"


def install_openid_client() -> Path:
    """`npm ci` into .cache/openid-client (reused while the lock file is unchanged)."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("node and npm are needed for the openid-client interop test")
    lock = (HERE / "package-lock.json").read_text()
    marker = CACHE / ".installed-lock"
    if not (marker.exists() and marker.read_text() == lock):
        CACHE.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(HERE / name, CACHE / name)
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=CACHE,
            check=True,
            timeout=300,
        )
        marker.write_text(lock)
    shutil.copy(HERE / "ciba-poll.mjs", CACHE / "ciba-poll.mjs")
    return CACHE


def test_poll_flow_with_openid_client(live_server: LiveServer) -> None:
    folder = install_openid_client()
    env = {
        **os.environ,
        "ISSUER": live_server.issuer,
        "CLIENT_ID": live_server.client_id,
        "CLIENT_SECRET": live_server.client_secret,
        "LOGIN_HINT": live_server.login_hint,
    }
    result = subprocess.run(
        ["node", "ciba-poll.mjs"], cwd=folder, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["approval_status"] == 200
    assert outcome["interval"] == 1
    assert outcome["token_type"].lower() == "bearer"
    assert outcome["has_refresh_token"] is True
    assert outcome["claims"]["iss"] == live_server.issuer
    assert outcome["claims"]["aud"] == live_server.client_id
