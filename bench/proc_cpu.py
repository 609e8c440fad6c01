"""A started server and its worker processes: CPU accounting from /proc, and stopping.

The harness driver reads the CPU time of the one pid in the target's pid file. With
``--workers 2`` that pid is uvicorn's supervisor and the work happens in its children, so
``CpuSampler`` samples the CPU time of the whole process tree and the report takes the
CPU of each measured phase from those samples.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType

CLK_TCK = os.sysconf("SC_CLK_TCK")
SAMPLE_PERIOD_S = 0.05
RESCAN_PERIOD_S = 1.0


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of one process (children not included)."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def descendants(root: int) -> list[int]:
    """All live descendants of ``root`` (one scan of /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


class ProcessTree:
    """A Popen'd server; stops it with SIGTERM, then SIGKILL for whatever is left."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def pids(self) -> list[int]:
        return [self.pid, *descendants(self.pid)] if self.running() else []

    def terminate(self, grace_s: float = 10.0) -> None:
        remembered = self.pids()
        if self.running():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pid in remembered[1:]:
            _kill_if_alive(pid)


def _kill_if_alive(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


class RecordedCpu:
    """Samples saved by an earlier ``CpuSampler`` (for re-rendering a report)."""

    def __init__(self, samples: list[list[float]]) -> None:
        self.samples = [(t, cpu) for t, cpu in samples]

    def cpu_between(self, start: float, end: float) -> float | None:
        return interpolate(self.samples, end, start)


def interpolate(samples: list[tuple[float, float]], end: float, start: float) -> float | None:
    """CPU seconds between two wall-clock times, linearly interpolated between samples."""
    begin, finish = _at(samples, start), _at(samples, end)
    return None if begin is None or finish is None else finish - begin


def _at(samples: list[tuple[float, float]], moment: float) -> float | None:
    if not samples or moment < samples[0][0] or moment > samples[-1][0]:
        return None
    for (t0, c0), (t1, c1) in itertools.pairwise(samples):
        if t0 <= moment <= t1:
            return c0 if t1 == t0 else c0 + (c1 - c0) * (moment - t0) / (t1 - t0)
    return samples[-1][1]


class CpuSampler:
    """Samples (wall time, total CPU seconds of the tree) every 50 ms in a thread."""

    def __init__(self, tree: ProcessTree) -> None:
        self.tree = tree
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        pids = self.tree.pids()
        rescanned = time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() - rescanned > RESCAN_PERIOD_S:
                pids, rescanned = self.tree.pids(), time.monotonic()
            total = sum(cpu for cpu in map(cpu_seconds, pids) if cpu is not None)
            self.samples.append((time.time(), total))
            self._stop.wait(SAMPLE_PERIOD_S)

    def cpu_between(self, start: float, end: float) -> float | None:
        """CPU seconds the tree used between two wall-clock times."""
        return interpolate(self.samples, end, start)
