"""The interpreter `make` builds .venv with (scripts/pick-python.sh, docs/performance.md
step 28): the system's python3 first, when it can build a virtualenv of Python 3.11+."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "pick-python.sh"
CAN_BUILD = "import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))"

sys.path.insert(0, str(REPO / "bench"))
from bench_report import _libpython  # noqa: E402


def _picked() -> str:
    done = subprocess.run(["sh", str(SCRIPT)], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _can_build(interpreter: str) -> bool:
    return subprocess.run([interpreter, "-c", CAN_BUILD], capture_output=True).returncode == 0


def test_the_picked_interpreter_can_build_the_virtualenv() -> None:
    assert _can_build(_picked())


def test_the_system_python_comes_before_the_path() -> None:
    system = Path("/usr/bin/python3")
    expected = str(system) if system.exists() and _can_build(str(system)) else "python3"
    assert _picked() == expected


def test_the_bench_report_says_how_libpython_is_reached() -> None:
    maps = Path("/proc/self/maps").read_text()
    expected = "shared libpython" if "/libpython" in maps else "libpython linked in"
    assert _libpython() == expected
