"""The benchmark report: reads compare runs, writes the Markdown page and the chart.

Standard library only, except ``draw_chart`` (matplotlib), which ``write_report`` runs in
the harness's driver virtualenv: ``python bench_report.py --chart DATA.json OUT.png``.
"""

# ruff: noqa: S603  (a bench script: runs fixed local commands by design)

from __future__ import annotations

import datetime as dt
import json
import platform
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

REFERENCE = "oidc-provider-poll-manual"
CHART_NAME = "benchmarks-flows.png"


class CpuSource(Protocol):
    def cpu_between(self, start: float, end: float) -> float | None: ...


@dataclass
class ConfigResult:
    key: str
    label: str
    workers: int
    rows: list[dict[str, Any]]
    out_dir: Path
    exit_code: int = 0
    command: str = ""
    cpu_note: str = ""
    cross_check: list[str] = field(default_factory=list)
    server_exit: int | str | None = None
    commit: str = ""  # of the tree the run measured (``git describe``), "" if not recorded

    def row(self, concurrency: int, reference: bool) -> dict[str, Any] | None:
        for row in self.rows:
            is_reference = row["target"] == REFERENCE
            if row["concurrency"] == concurrency and is_reference == reference:
                return row
        return None


# --------------------------------------------------------------------------- reading runs


def load_config_result(
    key: str, label: str, workers: int, out_dir: Path, sampler: CpuSource
) -> ConfigResult:
    """The compare summary, with Backchannel's CPU taken over its whole process tree."""
    summary_path = out_dir / "summary.json"
    rows: list[dict[str, Any]] = (
        json.loads(summary_path.read_text())["rows"] if summary_path.exists() else []
    )
    result = ConfigResult(key, label, workers, rows, out_dir)
    tree_cpu = _tree_cpu_by_concurrency(out_dir, sampler)
    for row in rows:
        if row["target"] == REFERENCE:
            continue
        measured = tree_cpu.get(row["concurrency"])
        row["tree_cpu_ms_per_flow"] = measured
        driver_value = row.get("server_cpu_ms_per_flow")
        if measured is not None and driver_value:
            result.cross_check.append(
                f"C={row['concurrency']}: driver (first process) {driver_value:.3f}, "
                f"whole tree {measured:.3f}"
            )
        row["server_cpu_ms_per_flow"] = measured
        row["server_cpu_pct"] = _tree_cpu_pct(out_dir, row, sampler)
    paired = _paired_ratios(out_dir, sampler)
    for row in rows:
        row.update(_ratios(result, row))
        if row["target"] != REFERENCE:
            row["x_flows_reps"], row["x_cpu_reps"] = paired.get(row["concurrency"], ([], []))
    processes = "uvicorn's supervisor, both workers" if workers > 1 else "the worker"
    result.cpu_note = (
        f"server CPU = sum over {processes} and each worker's signing process, sampled from "
        "/proc every 50 ms by run_bench (the driver reads only the first process's pid)"
    )
    return result


def _runs(out_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    found = []
    for path in sorted(out_dir.glob("run-*.json")):
        data = json.loads(path.read_text())
        if data["target"]["name"] != REFERENCE:
            found.append((path, data))
    return found


def _window(path: Path, data: dict[str, Any]) -> tuple[float, float]:
    """The measured phase: it ends just before the driver writes its result file."""
    end = path.stat().st_mtime
    return end - float(data["measured"]["wall_s"]), end


def _tree_cpu_by_concurrency(out_dir: Path, sampler: CpuSource) -> dict[int, float | None]:
    per_c: dict[int, list[float]] = {}
    for path, data in _runs(out_dir):
        cpu = _tree_cpu_ms_per_flow(path, data, sampler)
        if cpu is not None:
            per_c.setdefault(data["settings"]["concurrency"], []).append(cpu)
    return {c: round(statistics.median(v), 3) for c, v in per_c.items()}


def _tree_cpu_ms_per_flow(path: Path, data: dict[str, Any], sampler: CpuSource) -> float | None:
    flows = data["measured"]["flows_ok"]
    cpu = sampler.cpu_between(*_window(path, data))
    return 1000 * cpu / flows if cpu is not None and flows else None


def _paired_ratios(
    out_dir: Path, sampler: CpuSource
) -> dict[int, tuple[list[float | None], list[float | None]]]:
    """Per concurrency, Backchannel's flows/s and CPU per flow over oidc-provider's in each
    repetition, in repetition order: ``compare.sh`` runs the two back to back in every
    repetition, so each pair was measured in the same minutes of a drifting machine."""
    runs: dict[tuple[int, int], dict[bool, tuple[float, float | None]]] = {}
    for path in sorted(out_dir.glob("run-*.json")):
        repetition = path.stem.rsplit("-r", 1)[-1]
        if not repetition.isdigit():
            continue
        data = json.loads(path.read_text())
        reference = data["target"]["name"] == REFERENCE
        cpu = (
            data["measured"].get("cpu", {}).get("server_cpu_ms_per_flow")
            if reference
            else _tree_cpu_ms_per_flow(path, data, sampler)
        )
        key = (data["settings"]["concurrency"], int(repetition))
        runs.setdefault(key, {})[reference] = (data["measured"]["flows_per_s"], cpu)
    paired: dict[int, tuple[list[float | None], list[float | None]]] = {}
    for (concurrency, _), pair in sorted(runs.items()):
        if True in pair and False in pair:
            (flows, cpu), (base_flows, base_cpu) = pair[False], pair[True]
            flows_ratios, cpu_ratios = paired.setdefault(concurrency, ([], []))
            flows_ratios.append(_ratio(flows, base_flows))
            cpu_ratios.append(_ratio(cpu, base_cpu))
    return paired


def _tree_cpu_pct(out_dir: Path, row: dict[str, Any], sampler: CpuSource) -> float | None:
    values = []
    for path, data in _runs(out_dir):
        if data["settings"]["concurrency"] != row["concurrency"]:
            continue
        start, end = _window(path, data)
        cpu = sampler.cpu_between(start, end)
        if cpu is not None:
            values.append(100 * cpu / (end - start))
    return round(statistics.median(values), 1) if values else None


def _ratios(result: ConfigResult, row: dict[str, Any]) -> dict[str, float | None]:
    base = result.row(row["concurrency"], reference=True)
    if base is None:
        return {"x_flows": None, "x_cpu": None}
    return {
        "x_flows": _ratio(row["flows_per_s"].get("median"), base["flows_per_s"].get("median")),
        "x_cpu": _ratio(row.get("server_cpu_ms_per_flow"), base.get("server_cpu_ms_per_flow")),
    }


def _ratio(value: float | None, base: float | None) -> float | None:
    """``value / base``, unrounded: a goal is judged on it, and a ratio rounded first
    (0.9496 to 0.950) could pass a goal it misses."""
    if value is None or not base:
        return None
    return value / base


# --------------------------------------------------------------------------- environment


def collect_environment(harness: Path, repo: Path) -> dict[str, str]:
    package = harness / "oidc-provider" / "node_modules" / "oidc-provider" / "package.json"
    oidc_version = json.loads(package.read_text())["version"] if package.exists() else "?"
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(_nproc()),
        "cpu": _cpu_model(),
        "memory": _memory(),
        "kernel": platform.release(),
        "load": Path("/proc/loadavg").read_text().split()[0],
        "python": f"{platform.python_version()} ({_libpython()})",
        "node": _output(["node", "--version"]),
        "oidc_provider": oidc_version,
        "backchannel": _backchannel_version(),
        "commit": source_commit(repo),
    }


def source_commit(repo: Path) -> str:
    """``git describe --always --dirty`` of ``repo``: the tree a run measures."""
    return _output(["git", "-C", str(repo), "describe", "--always", "--dirty"])


def _nproc() -> int:
    import os

    return len(os.sched_getaffinity(0))


def _libpython() -> str:
    """How this interpreter reaches libpython (a shared one is slower: performance.md, step 28)."""
    maps = Path("/proc/self/maps")
    if not maps.exists():
        return "libpython unknown"
    shared = any("/libpython" in line for line in maps.read_text().splitlines())
    return "shared libpython" if shared else "libpython linked in"


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def _memory() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return "?"


def _backchannel_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("backchannel")
    except PackageNotFoundError:
        return "?"


def _output(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


# --------------------------------------------------------------------------- writing


def write_report(
    output: Path,
    results: list[ConfigResult],
    environment: dict[str, str],
    *,
    quick: bool,
    chart_python: Path,
) -> None:
    from bench_markdown import render

    output.parent.mkdir(parents=True, exist_ok=True)
    chart = output.parent / (CHART_NAME if not quick else "benchmarks-quick-flows.png")
    data_file = output.parent / (chart.stem + ".json")
    data_file.write_text(json.dumps(chart_data(results), indent=2))
    drawn = subprocess.run(
        [chart_python, __file__, "--chart", data_file, chart], check=False
    ).returncode
    data_file.unlink()
    output.write_text(
        render(results, environment, quick=quick, chart=chart if drawn == 0 else None)
    )


def chart_data(results: list[ConfigResult]) -> dict[str, Any]:
    lines: dict[str, dict[str, float]] = {}
    reference: dict[str, list[float]] = {}
    for result in results:
        for row in result.rows:
            median = row["flows_per_s"].get("median")
            if median is None:
                continue
            c = str(row["concurrency"])
            if row["target"] == REFERENCE:
                reference.setdefault(c, []).append(median)
            else:
                lines.setdefault(result.label, {})[c] = median
    series = {"oidc-provider 9.13 (manual approval)": {
        c: statistics.median(v) for c, v in reference.items()
    }}  # fmt: skip
    series.update(lines)
    return {"series": series, "reference_points": reference}


def draw_chart(data_file: Path, output: Path) -> None:
    import matplotlib  # type: ignore[import-not-found]

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found]

    data = json.loads(data_file.read_text())
    concurrencies = sorted({int(c) for s in data["series"].values() for c in s})
    position = {c: i for i, c in enumerate(concurrencies)}
    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=120)
    for name, points in data["series"].items():
        xs = sorted(int(c) for c in points)
        style = {"color": "0.35", "linestyle": "--"} if name.startswith("oidc") else {}
        ys = [points[str(c)] for c in xs]
        axes.plot([position[c] for c in xs], ys, marker="o", label=name, **style)
    for c, values in data["reference_points"].items():
        axes.scatter([position[int(c)]] * len(values), values, color="0.6", s=10, zorder=3)
    axes.set_xticks(range(len(concurrencies)), [str(c) for c in concurrencies])
    axes.set_xlabel("concurrent flows (driver workers)")
    axes.set_ylabel("completed CIBA poll flows per second")
    axes.set_title("CIBA poll flow throughput (median of repetitions, same run)")
    axes.set_ylim(bottom=0)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(output)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--chart":
        draw_chart(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        sys.exit("usage: bench_report.py --chart DATA.json OUT.png")
