"""`make bench QUICK=1` as a smoke test (issue 7 item 1): it starts the oidc-provider
reference and Backchannel, runs a few hundred flows against each through the harness's
driver, stops both and writes its report. Only that it completes without errors is checked
here; speed is the benchmark's business, never a test's."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HARNESS = REPO.parent / "shared" / "bench"
QUICK = REPO / "var" / "bench" / "quick" / "sqlite-1w"
REPORT = REPO / "var" / "bench" / "benchmarks-quick.md"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.alone,
    pytest.mark.skipif(not HARNESS.is_dir(), reason="the bench harness lives next to the repo"),
]


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_the_quick_bench_runs_both_servers_without_errors_and_stops_them() -> None:
    REPORT.unlink(missing_ok=True)
    completed = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run_bench.py"), "--quick"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    rows = json.loads((QUICK / "compare" / "summary.json").read_text())["rows"]
    seen = {(row["concurrency"], row["target"]) for row in rows}
    assert seen == {
        (c, target)
        for c in (1, 16)
        for target in ("oidc-provider-poll-manual", "backchannel-sqlite-1w")
    }
    for row in rows:
        assert row["flows_ok"] == 300 and row["errors"] == 0, row
        assert row["token_calls_per_flow"] == 1.0
    report = REPORT.read_text()
    assert "Backchannel SQLite, 1 worker" in report and "oidc-provider" in report
    assert not _port_open(3000) and not _port_open(8088)  # both servers stopped
