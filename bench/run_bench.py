"""`make bench`: Backchannel against the node-oidc-provider reference, in one run.

For every configuration (SQLite with one worker, SQLite with two workers, PostgreSQL with
one worker; quick mode: SQLite with one worker only) this starts a fresh Backchannel, seeds
the bench client and users, and runs the harness's ``compare.sh`` with oidc-provider as the
first target, so every ratio comes from one run. Then it writes ``docs/benchmarks.md`` and
``docs/benchmarks-flows.png`` (quick mode: ``var/bench/benchmarks-quick.md``).

The harness lives next to the repository (``../shared/bench``); when that directory is
read-only it is copied to ``var/bench-harness/``. Every process started here is stopped
again, also on failure and on Ctrl-C. Standard library only; the chart is drawn by the
harness's driver virtualenv, into which matplotlib is installed.
"""

# ruff: noqa: S603, S607  (a bench script: runs fixed local commands by design)

from __future__ import annotations

import argparse
import datetime
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_report import (
    ConfigResult,
    CpuSource,
    collect_environment,
    load_config_result,
    source_commit,
    write_report,
)
from proc_cpu import CpuSampler, ProcessTree, RecordedCpu

# The pending-request steps (issue 7 items 5 and 6) live in bench_pending.py.
PENDING_STEPS = ("pending-mem", "pending-many-sqlite", "pending-many-postgres")

REPO = Path(__file__).resolve().parent.parent
SHARED_HARNESS = REPO.parent / "shared" / "bench"
SCRATCH_HARNESS = REPO / "var" / "bench-harness"
VAR = REPO / "var" / "bench"
BIN = REPO / ".venv" / "bin"
TARGET_TEMPLATE = REPO / "bench" / "targets" / "backchannel-poll.json"
REFERENCE_TARGET = "targets/oidc-provider-poll-manual.json"
PORT = 8088
PG_SERVER = "postgresql+asyncpg://postgres@127.0.0.1:5432"
COPY_EXCLUDES = ("node_modules", ".venv", "results", "__pycache__")


@dataclass(frozen=True)
class Config:
    key: str
    label: str
    workers: int
    postgres: bool


@dataclass(frozen=True)
class Plan:
    concurrency: str
    flows: str
    reps: int
    warmup: int
    configs: tuple[Config, ...]
    var: Path

    def compare_args(self) -> list[str]:
        return [
            "--concurrency", self.concurrency, "--flows", self.flows,
            "--reps", str(self.reps), "--warmup", str(self.warmup), "--http", "aiohttp",
        ]  # fmt: skip


SQLITE_1W = Config("sqlite-1w", "Backchannel SQLite, 1 worker", 1, False)
SQLITE_2W = Config("sqlite-2w", "Backchannel SQLite, 2 workers", 2, False)
POSTGRES_1W = Config("postgres-1w", "Backchannel PostgreSQL, 1 worker", 1, True)
FULL = Plan("1,16,64", "2000,5000,5000", 3, 100, (SQLITE_1W, SQLITE_2W, POSTGRES_1W), VAR)
QUICK = Plan("1,16", "300", 1, 50, (SQLITE_1W,), VAR / "quick")


class Interrupted(Exception):
    """SIGTERM/SIGHUP: unwind through the finally blocks like Ctrl-C does."""


def _raise_interrupted(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(f"signal {signum}")


# --------------------------------------------------------------------------- harness


def prepare_harness() -> Path:
    """A writable harness with node deps, certs, the driver venv and matplotlib."""
    if not SHARED_HARNESS.is_dir():
        raise SystemExit(f"harness not found: {SHARED_HARNESS} (expected next to the repo)")
    harness = SHARED_HARNESS if _writable(SHARED_HARNESS) else SCRATCH_HARNESS
    if harness == SCRATCH_HARNESS:
        _copy_harness(SHARED_HARNESS, SCRATCH_HARNESS)
    stamp = harness / ".bench-setup-done"
    if not stamp.exists():
        subprocess.run(["bash", "setup.sh", "--no-clients"], cwd=harness, check=True)
        stamp.touch()
    driver_python = harness / "driver" / ".venv" / "bin" / "python"
    probe = subprocess.run([str(driver_python), "-c", "import matplotlib"], capture_output=True)
    if probe.returncode != 0:
        pip = [str(driver_python), "-m", "pip", "install", "--quiet", "matplotlib"]
        subprocess.run(pip, check=True)
    return harness


def _writable(directory: Path) -> bool:
    """Writable by its mode bits too: root passes ``os.access`` even on a read-only copy."""
    return os.access(directory, os.W_OK) and bool(directory.stat().st_mode & 0o200)


def _copy_harness(source: Path, target: Path) -> None:
    """Refresh the scratch copy; installed deps and results in it are kept."""
    target.mkdir(parents=True, exist_ok=True)
    for path in source.rglob("*"):
        relative = path.relative_to(source)
        if any(part in COPY_EXCLUDES for part in relative.parts):
            continue
        destination = target / relative
        if path.is_dir():
            destination.mkdir(exist_ok=True)
        else:
            shutil.copy2(path, destination)
            destination.chmod(destination.stat().st_mode | 0o200)
    for directory in [target, *(p for p in target.rglob("*") if p.is_dir())]:
        directory.chmod(directory.stat().st_mode | 0o700)


# --------------------------------------------------------------------------- servers


def wait_for_discovery(issuer: str, alive: ProcessTree | None, timeout_s: float = 60.0) -> None:
    url = f"{issuer}/.well-known/openid-configuration"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if alive is not None and not alive.running():
            raise RuntimeError(f"server for {issuer} exited during start-up")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (loopback)
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout_s:.0f} s")


class OidcProvider:
    """The reference peer, started and stopped through the harness's own scripts."""

    def __init__(self, harness: Path) -> None:
        self.harness = harness
        self.started = False

    def start(self) -> None:
        env = {**os.environ, "AUTO_APPROVE": "0", "OIDC_ADAPTER": "map"}
        subprocess.run(["bash", "oidc-provider/start.sh"], cwd=self.harness, env=env, check=True)
        self.started = True

    def stop(self) -> None:
        if self.started:
            subprocess.run(["bash", "oidc-provider/stop.sh"], cwd=self.harness, check=False)
            self.started = False


class Backchannel:
    """One Backchannel server on its own fresh directory (database, master key, logs)."""

    def __init__(self, config: Config, directory: Path, port: int = PORT) -> None:
        self.config = config
        self.directory = directory
        self.port = port
        self.issuer = f"http://127.0.0.1:{port}"
        self.pg_url: str | None = None
        self.tree: ProcessTree | None = None

    def environment(self) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("BACKCHANNEL_")}
        return {
            **inherited,
            "BACKCHANNEL_DEV_MODE": "true",
            "BACKCHANNEL_ISSUER": self.issuer,
            "BACKCHANNEL_SERVER__PORT": str(self.port),
            "BACKCHANNEL_DATABASE__URL": self.database_url(),
            "BACKCHANNEL_KEYS__MASTER_SECRET_FILE": str(self.directory / "master.key"),
            "BACKCHANNEL_TESTING__AUTOMATED_APPROVAL": "true",
            # oidc-provider issues no refresh token to its bench client (no offline_access,
            # no refresh_token grant type), so neither does Backchannel here: like for like.
            "BACKCHANNEL_TOKENS__ISSUE_REFRESH_TOKENS": "false",
        }

    def database_url(self) -> str:
        if self.config.postgres:
            if self.pg_url is None:
                self.pg_url = f"{PG_SERVER}/bench_{secrets.token_hex(6)}"
            return self.pg_url
        return f"sqlite+aiosqlite:///{self.directory / 'bench.db'}"

    def prepare(self, seed_args: tuple[str, ...] = ()) -> dict[str, str]:
        """Fresh directory and database, schema, bench client and users; the credentials."""
        if self.directory.exists():
            shutil.rmtree(self.directory)
        self.directory.mkdir(parents=True)
        env = self.environment()
        if self.config.postgres:
            self._seed_tool("create-db", self.database_url())
            subprocess.run(
                [str(BIN / "backchannel"), "db", "upgrade"], env=env, check=True, cwd=self.directory
            )
        seeded = subprocess.run(
            [BIN / "python", REPO / "bench" / "seed_bench.py", "seed", "--users", "64", *seed_args],
            env=env, check=True, capture_output=True, text=True, cwd=self.directory,
        )  # fmt: skip
        credentials: dict[str, str] = json.loads(seeded.stdout.strip().splitlines()[-1])
        return credentials

    def start(self) -> ProcessTree:
        log = (self.directory / "server.log").open("wb")
        command = [str(BIN / "backchannel"), "serve", "--workers", str(self.config.workers)]
        process = subprocess.Popen(
            command, env=self.environment(), stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.directory,
        )  # fmt: skip
        log.close()
        (self.directory / "server.pid").write_text(f"{process.pid}\n")
        self.tree = ProcessTree(process)
        wait_for_discovery(self.issuer, self.tree)
        return self.tree

    def stop(self) -> None:
        if self.tree is not None:
            self.tree.terminate()
            self.tree = None
        if self.pg_url is not None:
            self._seed_tool("drop-db", self.pg_url)
            self.pg_url = None

    def _seed_tool(self, command: str, url: str) -> None:
        tool = [str(BIN / "python"), str(REPO / "bench" / "seed_bench.py"), command, url]
        subprocess.run(tool, check=True)


def write_target(config: Config, directory: Path, credentials: dict[str, str]) -> Path:
    target = json.loads(TARGET_TEMPLATE.read_text())
    target.pop("_note", None)
    target.update(
        name=f"backchannel-{config.key}",
        client_id=credentials["client_id"],
        client_secret=credentials["client_secret"],
        server_pid_file="server.pid",
    )
    path = directory / "backchannel-poll.json"
    path.write_text(json.dumps(target, indent=2) + "\n")
    path.chmod(0o600)
    return path


# --------------------------------------------------------------------------- one configuration


def run_config(harness: Path, plan: Plan, config: Config) -> ConfigResult:
    directory = plan.var / config.key
    server = Backchannel(config, directory)
    try:
        target = write_target(config, directory, server.prepare())
        tree = server.start()
        out_dir = directory / "compare"
        command = [
            "bash", "compare.sh", REFERENCE_TARGET, str(target), *plan.compare_args(),
            "--out-dir", str(out_dir),
        ]  # fmt: skip
        commit = source_commit(REPO)
        print(f"\n=== {config.label}: {' '.join(command[1:])}", flush=True)
        with CpuSampler(tree) as sampler:
            completed = subprocess.run(command, cwd=harness, check=False)
        (directory / "cpu-samples.json").write_text(json.dumps(sampler.samples))
        outcome = {
            "commit": commit,
            "exit_code": completed.returncode,
            "command": _display_command(command),
            "server_exit": None if tree.running() else tree.process.returncode,
        }
        (directory / "outcome.json").write_text(json.dumps(outcome))
        return _result(config, directory, sampler)
    finally:
        server.stop()


def _result(config: Config, directory: Path, sampler: CpuSource) -> ConfigResult:
    """The configuration's figures from the files a run left in ``directory``."""
    result = load_config_result(
        config.key, config.label, config.workers, directory / "compare", sampler
    )
    outcome = json.loads((directory / "outcome.json").read_text())
    result.exit_code = outcome["exit_code"]
    result.command = outcome["command"]
    result.server_exit = outcome["server_exit"]
    result.commit = outcome.get("commit", "")
    return result


def rerender(plan: Plan, configs: tuple[Config, ...]) -> list[ConfigResult]:
    """``--report-only``: the results of the last run, from var/bench/<config>/."""
    results = []
    for config in configs:
        directory = plan.var / config.key
        if (directory / "outcome.json").exists():
            samples = json.loads((directory / "cpu-samples.json").read_text())
            results.append(_result(config, directory, RecordedCpu(samples)))
    return results


def _display_command(command: list[str]) -> str:
    """The compare command as a reader can retype it (no paths of this machine)."""
    shown = []
    for part in command[1:]:
        if part.startswith(str(REPO)):
            part = "<repo>" + part[len(str(REPO)) :]
        shown.append(part)
    return "./" + " ".join(shown)


def run_period(results: list[ConfigResult]) -> dict[str, str]:
    """When the measurements were taken: first compare start to last result file."""
    starts = [(r.out_dir / "meta.json").stat().st_mtime for r in results]
    ends = [(r.out_dir / "summary.json").stat().st_mtime for r in results]
    if not starts or not ends:
        return {}
    stamp = "%Y-%m-%d %H:%M UTC"
    utc = datetime.UTC
    return {
        "date": datetime.datetime.fromtimestamp(min(starts), utc).strftime(stamp),
        "finished": datetime.datetime.fromtimestamp(max(ends), utc).strftime(stamp),
    }


def run_all(harness: Path, plan: Plan, configs: tuple[Config, ...]) -> list[ConfigResult]:
    reference = OidcProvider(harness)
    results: list[ConfigResult] = []
    try:
        reference.start()
        wait_for_discovery("http://127.0.0.1:3000", None)
        for config in configs:
            results.append(run_config(harness, plan, config))
    finally:
        reference.stop()
    return results


def check_ports_free() -> None:
    import socket

    for port in (3000, PORT):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                raise SystemExit(f"port {port} is already in use; stop that server first")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: C=1,16, 300 flows")
    parser.add_argument(
        "--only", default=None, help="comma list of configurations (sqlite-1w,sqlite-2w,...)"
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="only rewrite the report from the last run's files under var/bench/",
    )
    args = parser.parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_interrupted)
    plan = QUICK if args.quick else FULL
    configs = plan.configs
    if args.only:
        wanted = set(args.only.split(","))
        configs = tuple(c for c in FULL.configs if c.key in wanted)
        extra_steps = [name for name in args.only.split(",") if name in PENDING_STEPS]
        if extra_steps and not configs:
            return run_pending_steps(extra_steps, report_only=args.report_only)
    harness = prepare_harness()
    plan.var.mkdir(parents=True, exist_ok=True)
    environment = collect_environment(harness, REPO)
    if args.report_only:
        results = rerender(plan, configs)
        measured = {result.commit for result in results if result.commit}
        if len(measured) == 1:  # the tree the runs measured, not the one rendering them
            environment["commit"] = measured.pop()
    else:
        check_ports_free()
        results = run_all(harness, plan, configs)
        if not args.quick and not args.only:
            from bench_pending import run_steps

            run_steps(harness, PENDING_STEPS)
    environment.update(run_period(results))
    output = VAR / "benchmarks-quick.md" if args.quick else REPO / "docs" / "benchmarks.md"
    driver_python = harness / "driver" / ".venv" / "bin" / "python"
    write_report(output, results, environment, quick=args.quick, chart_python=driver_python)
    print(f"\nwrote {output.relative_to(REPO)}")
    return 0 if all(r.exit_code == 0 for r in results) else 1


def run_pending_steps(steps: list[str], *, report_only: bool) -> int:
    """``--only pending-...``: those steps, then ``docs/benchmarks.md`` rewritten with the
    main comparison's figures kept from var/bench/<config>/."""
    from bench_pending import run_steps

    harness = prepare_harness()
    ok = True if report_only else run_steps(harness, tuple(steps))
    results = rerender(FULL, FULL.configs)
    environment = collect_environment(harness, REPO)
    environment.update(run_period(results))
    output = REPO / "docs" / "benchmarks.md"
    driver_python = harness / "driver" / ".venv" / "bin" / "python"
    write_report(output, results, environment, quick=False, chart_python=driver_python)
    print(f"\nwrote {output.relative_to(REPO)}")
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (KeyboardInterrupt, Interrupted):
        print("\ninterrupted; every started process was stopped", file=sys.stderr)
        sys.exit(130)
