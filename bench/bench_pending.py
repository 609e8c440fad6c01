"""Pending-request steps of ``make bench`` (issue 7 items 5 and 6).

``pending-mem``: server RSS before and after 10,000 never-approved requests (the harness's
``driver/pending_mem.py``), twice on the same Backchannel server (SQLite, one worker), and
the same against oidc-provider (``AUTO_APPROVE=0 OIDC_ADAPTER=map``) in the same run.

``pending-many-sqlite`` / ``pending-many-postgres``: two Backchannel servers of the same
configuration, one on an empty database and one with 100,000 pending requests inserted in
bulk (``seed_bench.py add-pending``), measured by one ``compare.sh`` run (targets
interleaved); then every pending row is made overdue and the expiry sweeper is timed
(``seed_bench.py sweep``).

Each step writes ``var/bench/<step>/result.json``; ``bench_pending_markdown.py`` renders
them. Ports 8089/8090 (Backchannel) and 3001 (oidc-provider), so a main comparison on
3000/8088 is not disturbed.
"""

# ruff: noqa: S603, S607  (a bench script: runs fixed local commands by design)

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from run_bench import (
    BIN,
    REPO,
    VAR,
    Backchannel,
    Config,
    wait_for_discovery,
    write_target,
)

PENDING_COUNT = 10_000
MANY_COUNT = 100_000
MANY_FLOWS = 3000
MANY_REPS = 3
PORTS = (8089, 8090)
REFERENCE_PORT = 3001


def run_steps(harness: Path, steps: tuple[str, ...]) -> bool:
    """Run the named steps; True when every one completed."""
    runners = {
        "pending-mem": lambda: pending_memory(harness),
        "pending-many-sqlite": lambda: many_pending(harness, postgres=False),
        "pending-many-postgres": lambda: many_pending(harness, postgres=True),
    }
    ok = True
    for step in steps:
        print(f"\n=== {step}", flush=True)
        ok = runners[step]() and ok
    return ok


def commit() -> str:
    head = _output(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = _output(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"])
    return head + ("-dirty" if dirty else "")


# --------------------------------------------------------------------------- item 5


def pending_memory(harness: Path) -> bool:
    directory = VAR / "pending-mem"
    config = Config("pending-mem", "Backchannel SQLite, 1 worker", 1, False)
    server = Backchannel(config, directory / "backchannel", port=PORTS[0])
    started = time.time()
    rounds: list[dict[str, Any]] = []
    try:
        credentials = server.prepare(("--extra-users", str(PENDING_COUNT)))
        target = _backchannel_target(config, server, credentials)
        server.start()
        for number in (1, 2):
            rounds.append(_pending_mem(harness, target, directory / f"backchannel-{number}.json"))
    finally:
        server.stop()
    reference = _reference_memory(harness, directory)
    result = {
        "commit": commit(),
        "started": started,
        "count": PENDING_COUNT,
        "backchannel": rounds,
        "oidc_provider": reference,
    }
    (directory / "result.json").write_text(json.dumps(result, indent=2))
    return all(r.get("created") == PENDING_COUNT for r in rounds)


def _pending_mem(
    harness: Path, target: Path, out: Path, extra: tuple[str, ...] = ()
) -> dict[str, Any]:
    command = [
        str(harness / "driver" / ".venv" / "bin" / "python"), "driver/pending_mem.py",
        "--target", str(target), "--count", str(PENDING_COUNT), "--concurrency", "16",
        "--out", str(out), *extra,
    ]  # fmt: skip
    subprocess.run(command, cwd=harness, check=True, stdout=subprocess.DEVNULL)
    data: dict[str, Any] = json.loads(out.read_text())
    data.pop("machine", None)
    return data


def _reference_memory(harness: Path, directory: Path) -> list[dict[str, Any]]:
    """oidc-provider with the unbounded Map adapter on its own port, two rounds."""
    base = f"http://127.0.0.1:{REFERENCE_PORT}"
    env = {
        **os.environ, "AUTO_APPROVE": "0", "OIDC_ADAPTER": "map",
        "PORT": str(REFERENCE_PORT), "PIDFILE": str(directory / "oidc-provider.pid"),
        "LOGFILE": str(directory / "oidc-provider.log"),
    }  # fmt: skip
    target = json.loads((harness / "targets" / "oidc-provider-poll-manual.json").read_text())
    target.update(
        name="oidc-provider-map",
        issuer=base,
        server_pid_file=str(directory / "oidc-provider.pid"),
    )
    target["approval"]["url"] = f"{base}/test/ciba/approve"
    target_path = directory / "oidc-provider-map.json"
    target_path.write_text(json.dumps(target, indent=2))
    helpers = ("--gc-url", f"{base}/test/gc", "--stats-url", f"{base}/test/stats")
    subprocess.run(["bash", "oidc-provider/start.sh"], cwd=harness, env=env, check=True)
    try:
        wait_for_discovery(base, None)
        return [
            _pending_mem(harness, target_path, directory / f"oidc-provider-{n}.json", helpers)
            for n in (1, 2)
        ]
    finally:
        subprocess.run(["bash", "oidc-provider/stop.sh"], cwd=harness, env=env, check=False)


def _backchannel_target(config: Config, server: Backchannel, credentials: dict[str, str]) -> Path:
    """The run_bench target, pointed at this server's port."""
    path = write_target(config, server.directory, credentials)
    target = json.loads(path.read_text())
    target["issuer"] = server.issuer
    target["approval"]["url"] = f"{server.issuer}/test/ciba/approve"
    path.write_text(json.dumps(target, indent=2) + "\n")
    return path


# --------------------------------------------------------------------------- item 6


def many_pending(harness: Path, *, postgres: bool) -> bool:
    backend = "postgres" if postgres else "sqlite"
    directory = VAR / f"pending-many-{backend}"
    label = "PostgreSQL" if postgres else "SQLite"
    empty_config = Config(f"{backend}-empty", f"{label}, empty database", 1, postgres)
    full_config = Config(f"{backend}-100k", f"{label}, 100,000 pending", 1, postgres)
    empty = Backchannel(empty_config, directory / "empty", port=PORTS[0])
    full = Backchannel(full_config, directory / "full", port=PORTS[1])
    started = time.time()
    try:
        empty_target = _backchannel_target(empty_config, empty, empty.prepare())
        full_credentials = full.prepare()
        full_target = _backchannel_target(full_config, full, full_credentials)
        inserted = _seed_json(full, "add-pending", full_credentials["client_id"])
        empty.start()
        full.start()
        out_dir = directory / "compare"
        command = [
            "bash", "compare.sh", str(empty_target), str(full_target), "--concurrency", "16",
            "--flows", str(MANY_FLOWS), "--reps", str(MANY_REPS), "--warmup", "100",
            "--http", "aiohttp", "--out-dir", str(out_dir),
        ]  # fmt: skip
        completed = subprocess.run(command, cwd=harness, check=False)
        empty.stop()
        if full.tree is not None:  # stop the server but keep its database for the sweep
            full.tree.terminate()
            full.tree = None
        sweep = _seed_json(full, "sweep")
    finally:
        empty.stop()
        full.stop()
    result = {
        "commit": commit(),
        "started": started,
        "backend": label,
        "pending": MANY_COUNT,
        "insert": inserted,
        "compare_exit": completed.returncode,
        "command": "./compare.sh <empty target> <100k target> " + " ".join(command[4:-2]),
        "runs": _run_latencies(out_dir),
        "sweep": sweep,
    }
    (directory / "result.json").write_text(json.dumps(result, indent=2))
    return completed.returncode == 0


def _seed_json(server: Backchannel, *args: str) -> dict[str, Any]:
    if args[0] == "add-pending":
        args = (*args, "--count", str(MANY_COUNT))
    completed = subprocess.run(
        [str(BIN / "python"), str(REPO / "bench" / "seed_bench.py"), *args],
        env=server.environment(), check=True, capture_output=True, text=True,
        cwd=server.directory,
    )  # fmt: skip
    data: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return data


def _run_latencies(out_dir: Path) -> dict[str, dict[str, Any]]:
    """Per target: every repetition's p99s (ms) and flows/s, and their medians."""
    per_target: dict[str, list[dict[str, float]]] = {}
    for path in sorted(out_dir.glob("run-*.json")):
        data = json.loads(path.read_text())
        measured = data["measured"]
        per_target.setdefault(data["target"]["name"], []).append(
            {
                "flows_per_s": measured["flows_per_s"],
                "token_p99": measured["token_call_latency_ms"]["p99"],
                "token_p50": measured["token_call_latency_ms"]["p50"],
                "flow_p99": measured["flow_latency_ms"]["p99"],
                "bc_p99": measured["bc_authorize_latency_ms"]["p99"],
                "errors": measured["flows_failed"],
            }
        )
    summary: dict[str, dict[str, Any]] = {}
    for name, reps in per_target.items():
        medians = {key: statistics.median(r[key] for r in reps) for key in reps[0]}
        summary[name] = {"reps": reps, "median": medians}
    return summary


def _output(command: list[str]) -> str:
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    return completed.stdout.strip()
