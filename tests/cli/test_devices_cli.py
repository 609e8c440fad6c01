"""`backchannel devices ...` as a real subprocess on SQLite (issue 6 item 1)."""

from __future__ import annotations

import json
import time
from datetime import datetime

import pytest

from tests.cli.conftest import Cli

pytestmark = pytest.mark.slow
ISSUER = "https://op.example.test"


def test_issue_6_item_1_enrol_code_json_has_code_expiry_and_url(cli: Cli) -> None:
    env = {"BACKCHANNEL_ISSUER": ISSUER}
    added = cli("users", "add", "--username", "dana", env=env)
    assert added.returncode == 0, added.stderr
    before = time.time()
    result = cli("devices", "enrol-code", "dana", "--json", env=env)
    assert result.returncode == 0, result.stderr
    issued = json.loads(result.stdout)  # nothing but the JSON: no QR code, no text lines
    assert set(issued) == {"code", "expires_at", "url"}
    assert len(issued["code"]) >= 20
    assert issued["url"] == f"{ISSUER}/authenticator/#enrol={issued['code']}"
    expires = datetime.fromisoformat(issued["expires_at"]).timestamp()
    assert before + 600 - 2 <= expires <= time.time() + 600
    again = json.loads(cli("devices", "enrol-code", "dana", "--json", env=env).stdout)
    assert again["code"] != issued["code"]


def test_enrol_code_for_an_unknown_user_fails(cli: Cli) -> None:
    result = cli("devices", "enrol-code", "nobody", "--json")
    assert result.returncode != 0
    assert "nobody" in result.stderr and result.stdout == ""
