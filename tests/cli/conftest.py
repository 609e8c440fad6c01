"""Run the real ``backchannel`` command in a subprocess, on a SQLite file in a tmp dir.

Usage: ``def test_x(cli: Cli): result = cli("clients", "list", "--json")``.
``cli.home`` is the working directory (holding ``bc.db`` and ``master.key``); ``env=``
adds or overrides environment variables (a value of None removes one).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

ENTRY = "from backchannel.cli.main import main; main()"


class Cli:
    def __init__(self, home: Path) -> None:
        self.home = home

    def base_env(self) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("BACKCHANNEL_")}
        return {
            **inherited,
            "BACKCHANNEL_DEV_MODE": "true",
            "BACKCHANNEL_DATABASE__URL": f"sqlite+aiosqlite:///{self.home}/bc.db",
            "BACKCHANNEL_KEYS__MASTER_SECRET_FILE": f"{self.home}/master.key",
            "BACKCHANNEL_KEYS__ALGORITHMS": '["RS256"]',
            "COLUMNS": "200",
        }

    def __call__(
        self, *args: str, input: str | None = None, env: Mapping[str, str | None] | None = None
    ) -> subprocess.CompletedProcess[str]:
        full_env = self.base_env()
        for name, value in (env or {}).items():
            if value is None:
                full_env.pop(name, None)
            else:
                full_env[name] = value
        return subprocess.run(
            [sys.executable, "-c", ENTRY, *args],
            cwd=self.home,
            env=full_env,
            input=input or "",  # never the test runner's own stdin: prompts see EOF
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)
