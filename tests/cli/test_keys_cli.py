"""`backchannel keys list` and `keys rotate`, run as a real subprocess on SQLite."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ENTRY = "from backchannel.cli.main import main; main()"
KID = re.compile(r"[A-Za-z0-9_-]{16}")


def backchannel(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "BACKCHANNEL_DEV_MODE": "true",
        "BACKCHANNEL_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path}/bc.db",
        "BACKCHANNEL_KEYS__MASTER_SECRET_FILE": f"{tmp_path}/master.key",
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-c", ENTRY, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def rows(output: str) -> dict[str, str]:
    """kid -> the table row it appears in."""
    found = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in re.split(r"[│┃|]", line) if cell.strip()]
        if len(cells) >= 7 and KID.fullmatch(cells[0]):
            found[cells[0]] = line
    return found


def test_keys_list_shows_one_signing_key_per_algorithm(tmp_path: Path) -> None:
    result = backchannel(tmp_path, "keys", "list")

    assert result.returncode == 0, result.stderr
    listed = rows(result.stdout)
    assert len(listed) == 3
    assert all("signing" in row for row in listed.values())
    assert {alg for alg in ("RS256", "PS256", "ES256") if alg in result.stdout} == {
        "RS256",
        "PS256",
        "ES256",
    }
    assert (tmp_path / "master.key").stat().st_mode & 0o777 == 0o600


def test_keys_rotate_publishes_a_next_key(tmp_path: Path) -> None:
    before = rows(backchannel(tmp_path, "keys", "list").stdout)

    rotated = backchannel(tmp_path, "keys", "rotate", "--alg", "ES256")

    assert rotated.returncode == 0, rotated.stderr
    match = re.search(r"new key (\S+) \(ES256\) published now, signs from \d{4}-", rotated.stdout)
    assert match, rotated.stdout
    new_kid = match.group(1)
    assert new_kid not in before
    after = rows(backchannel(tmp_path, "keys", "list").stdout)
    assert set(after) == set(before) | {new_kid}
    assert "next" in after[new_kid]
    assert sum("signing" in row for row in after.values()) == 3


def test_keys_rotate_refuses_an_unconfigured_algorithm(tmp_path: Path) -> None:
    result = backchannel(tmp_path, "keys", "rotate", "--alg", "HS256")
    assert result.returncode == 2
    assert "HS256" in result.stderr
