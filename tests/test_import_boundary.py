"""ARCHITECTURE rule 1: ``backchannel.protocol`` imports no web framework, ORM, HTTP client
or Redis — directly or through anything it imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import backchannel.protocol

FORBIDDEN = ("starlette", "sqlalchemy", "httpx", "redis", "uvicorn", "aiosqlite", "asyncpg")
PROTOCOL_DIR = Path(backchannel.protocol.__file__).parent


def protocol_modules() -> list[str]:
    root = PROTOCOL_DIR.parent.parent
    return [
        ".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__")
        for path in sorted(PROTOCOL_DIR.rglob("*.py"))
    ]


def test_no_forbidden_import_statement_in_protocol() -> None:
    offenders = []
    for path in PROTOCOL_DIR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []


def test_importing_all_of_protocol_loads_no_forbidden_package() -> None:
    modules = protocol_modules()
    assert len(modules) > 10
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
