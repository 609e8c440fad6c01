"""`backchannel requests list|show|approve|deny`, run as a real subprocess on SQLite; the
requests are seeded by an in-process provider on the same database file."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from backchannel.app import build_provider
from backchannel.protocol.model import AuthRequest, RequestState
from backchannel.settings import Settings
from backchannel.storage import migrate
from tests.support.ciba import add_client, add_user, pending_request

pytestmark = pytest.mark.slow

ENTRY = "from backchannel.cli.main import main; main()"


def env_for(tmp_path: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("BACKCHANNEL_")},
        "BACKCHANNEL_DEV_MODE": "true",
        "BACKCHANNEL_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path}/bc.db",
        "BACKCHANNEL_KEYS__MASTER_SECRET_FILE": f"{tmp_path}/master.key",
        "BACKCHANNEL_KEYS__ALGORITHMS": '["RS256"]',
        "COLUMNS": "250",
    }


def settings_for(tmp_path: Path) -> Settings:
    return Settings(
        dev_mode=True,
        database={"url": f"sqlite+aiosqlite:///{tmp_path}/bc.db"},
        keys={"master_secret_file": f"{tmp_path}/master.key", "algorithms": ["RS256"]},
    )


def backchannel(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", ENTRY, "requests", *args],
        cwd=tmp_path,
        env=env_for(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def seed(tmp_path: Path, count: int = 2) -> list[AuthRequest]:
    async def run() -> list[AuthRequest]:
        settings = settings_for(tmp_path)
        await migrate.upgrade(settings.database)
        provider = await build_provider(settings)
        try:
            client = await add_client(provider, "call-centre")
            await add_user(provider, "user-1")
            seeded = []
            for n in range(count):
                _, request = await pending_request(
                    provider, client, expires_in=3600, binding_message=f"code [b]{n}[/b]"
                )
                seeded.append(request)
            return seeded
        finally:
            await provider.storage.close()

    return asyncio.run(run())


def stored_state(tmp_path: Path, request: AuthRequest) -> RequestState:
    async def run() -> RequestState:
        provider = await build_provider(settings_for(tmp_path))
        try:
            latest = await provider.storage.requests.get_request(request.id_hash)
            assert latest is not None
            return latest.state
        finally:
            await provider.storage.close()

    return asyncio.run(run())


def show_json(tmp_path: Path, ref: str) -> dict[str, Any]:
    result = backchannel(tmp_path, "show", ref, "--json")
    assert result.returncode == 0, result.stderr
    view: dict[str, Any] = json.loads(result.stdout)
    return view


def test_list_shows_requests_as_a_table_and_as_json(tmp_path: Path) -> None:
    first, second = seed(tmp_path)
    table = backchannel(tmp_path, "list")
    assert table.returncode == 0, table.stderr
    for request in (first, second):
        assert request.ref in table.stdout
    assert "call-centre" in table.stdout and "pending" in table.stdout
    assert "code [b]0[/b]" in table.stdout  # client text is shown literally, not as markup

    listed = backchannel(tmp_path, "list", "--json", "--state", "pending", "--limit", "1")
    assert listed.returncode == 0, listed.stderr
    views = json.loads(listed.stdout)
    assert len(views) == 1
    assert views[0]["state"] == "pending" and views[0]["subject"] == "user-1"

    none = backchannel(tmp_path, "list", "--state", "approved")
    assert none.returncode == 0 and "no requests" in none.stdout


def test_show_renders_the_request_and_its_timeline(tmp_path: Path) -> None:
    request, _ = seed(tmp_path)
    result = backchannel(tmp_path, "show", request.ref)
    assert result.returncode == 0, result.stderr
    assert "timeline" in result.stdout and "created" in result.stdout
    assert "call-centre" in result.stdout
    view = show_json(tmp_path, request.ref)
    assert [event["kind"] for event in view["timeline"]] == ["created"]


def test_approve_then_a_second_decision_exits_2(tmp_path: Path) -> None:
    request, _ = seed(tmp_path)
    approved = backchannel(tmp_path, "approve", request.ref, "--acr", "urn:acr:operator")
    assert approved.returncode == 0, approved.stderr
    assert "approved" in approved.stdout
    assert stored_state(tmp_path, request) is RequestState.APPROVED
    view = show_json(tmp_path, request.ref)
    assert view["acr"] == "urn:acr:operator"
    assert view["timeline"][-1]["kind"] == "approved"
    assert view["timeline"][-1]["detail"] == {"channel": "cli"}

    again = backchannel(tmp_path, "deny", request.ref)
    assert again.returncode == 2
    assert "not pending" in again.stderr
    assert stored_state(tmp_path, request) is RequestState.APPROVED


def test_deny_by_bare_hex_prefix(tmp_path: Path) -> None:
    _, request = seed(tmp_path)
    bare = request.id_hash.removeprefix("hmac:")[:10]
    denied = backchannel(tmp_path, "deny", bare)
    assert denied.returncode == 0, denied.stderr
    assert stored_state(tmp_path, request) is RequestState.DENIED


def test_unknown_and_ambiguous_refs_exit_2(tmp_path: Path) -> None:
    seed(tmp_path)
    unknown = backchannel(tmp_path, "show", "zzzz")
    assert unknown.returncode == 2 and "no request matches" in unknown.stderr
    ambiguous = backchannel(tmp_path, "approve", "hmac:")
    assert ambiguous.returncode == 2 and "matches 2 requests" in ambiguous.stderr
