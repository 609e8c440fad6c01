"""The benchmark report's per-repetition ratios (issue 7 item 1): each repetition of
``compare.sh`` runs oidc-provider and Backchannel back to back, and the report pairs those
two runs, flows/s from the driver's result files and CPU per flow from the samples of
Backchannel's process tree, besides the ratio of the medians the goals are judged on."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

from bench_markdown import _config_section, _goals  # noqa: E402
from bench_report import REFERENCE, load_config_result  # noqa: E402
from proc_cpu import RecordedCpu  # noqa: E402

OURS = "backchannel-sqlite-1w"
START = 1_800_000_000.0
WALL_S = 10.0
FLOWS = 1000


def _run_file(
    out_dir: Path, name: str, concurrency: int, rep: int, flows_per_s: float, cpu_ms: float
) -> float:
    """A driver result file as ``compare.sh`` leaves it; returns the end of its window."""
    end = START + 100 * rep + (50 if name == REFERENCE else 0) + concurrency
    path = out_dir / f"run-{name}-c{concurrency}-r{rep}.json"
    measured = {
        "flows_ok": FLOWS, "wall_s": WALL_S, "flows_per_s": flows_per_s,
        "cpu": {"server_cpu_ms_per_flow": cpu_ms},
    }  # fmt: skip
    settings = {"concurrency": concurrency}
    data = {"target": {"name": name}, "settings": settings, "measured": measured}
    path.write_text(json.dumps(data))
    os.utime(path, (end, end))  # the window is the file's mtime minus the run's wall time
    return end


def _row(target: str, concurrency: int, median: float, cpu: float) -> dict[str, object]:
    return {
        "target": target, "concurrency": concurrency, "runs": 2,
        "flows_per_s": {"median": median, "min": median, "max": median, "spread_pct": 0.0},
        "server_cpu_ms_per_flow": cpu,
    }  # fmt: skip


@pytest.fixture
def out_dir(tmp_path: Path) -> tuple[Path, RecordedCpu]:
    out = tmp_path / "compare"
    out.mkdir()
    samples: list[list[float]] = [[START, 0.0]]
    cpu_s = 0.0
    # C=16: oidc-provider 400 then 500 flows/s at 2.0 then 2.5 ms; Backchannel 440 then 450
    # at 2.2 then 2.0 ms (its CPU read from the samples, not from the file).
    for rep, (base, base_cpu, ours, ours_cpu) in enumerate(
        [(400.0, 2.0, 440.0, 2.2), (500.0, 2.5, 450.0, 2.0)], start=1
    ):
        _run_file(out, REFERENCE, 16, rep, base, base_cpu)
        end = _run_file(out, OURS, 16, rep, ours, 99.0)
        samples.append([end - WALL_S, cpu_s])
        cpu_s += ours_cpu * FLOWS / 1000
        samples.append([end, cpu_s])
    # C=64: the reference's run file is missing (nothing to pair), its summary row is not;
    # Backchannel's median is 0.9496 of it, just short of the 0.95 goal.
    end = _run_file(out, OURS, 64, 3, 949.6, 1.0)
    samples += [[end - WALL_S, cpu_s], [end, cpu_s + 1.0]]
    rows = [
        _row(REFERENCE, 16, 450.0, 2.25), _row(OURS, 16, 445.0, 2.1),
        _row(REFERENCE, 64, 1000.0, 1.0), _row(OURS, 64, 949.6, 1.0),
    ]  # fmt: skip
    (out / "summary.json").write_text(json.dumps({"rows": rows}))
    return out, RecordedCpu(samples)


def test_each_repetition_pairs_the_two_runs_made_back_to_back(
    out_dir: tuple[Path, RecordedCpu],
) -> None:
    out, cpu = out_dir
    result = load_config_result("sqlite-1w", "Backchannel SQLite, 1 worker", 1, out, cpu)
    ours = result.row(16, reference=False)
    assert ours is not None
    assert ours["x_flows_reps"] == pytest.approx([1.1, 0.9])
    assert ours["x_cpu_reps"] == pytest.approx([1.1, 0.8])
    assert ours["x_flows"] == pytest.approx(445 / 450, abs=1e-3)  # median over median
    unpaired = result.row(64, reference=False)
    assert unpaired is not None and unpaired["x_flows_reps"] == []


def test_the_report_shows_the_per_repetition_ratios_beside_the_medians(
    out_dir: tuple[Path, RecordedCpu],
) -> None:
    out, cpu = out_dir
    result = load_config_result("sqlite-1w", "Backchannel SQLite, 1 worker", 1, out, cpu)
    goals = _goals([result])
    assert (
        "| Backchannel SQLite, 1 worker | 16 | flows/s ≥ 1.00× oidc-provider | 0.989× | "
        "**FAIL** | 1.10 · 0.90 |"
    ) in goals
    assert "**pass** | 1.10 · 0.80 |" in goals  # CPU/flow at C=16 (2.1 / 2.25 ≤ 1.05)
    section = _config_section(result)
    assert "C=16: 1.10 · 0.90 (CPU/flow 1.10 · 0.80)" in section
    assert "C=64" not in section.split("Per repetition", 1)[1].split("\n", 1)[0]


def test_a_goal_is_judged_on_the_unrounded_ratio(out_dir: tuple[Path, RecordedCpu]) -> None:
    out, cpu = out_dir
    result = load_config_result("sqlite-1w", "Backchannel SQLite, 1 worker", 1, out, cpu)
    ours = result.row(64, reference=False)
    assert ours is not None and ours["x_flows"] == pytest.approx(0.9496)
    goals = _goals([result])
    assert "| 64 | flows/s ≥ 0.95× oidc-provider | 0.950× | **FAIL** |" in goals
