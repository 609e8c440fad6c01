"""The root command builds only the command it runs (cli/main.py), and still lists them all."""

from __future__ import annotations

import subprocess
import sys

import pytest

from backchannel.cli.main import EVERY_COMMAND, named_command


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["users", "list"], "users"),
        (["--config", "bc.toml", "serve"], "serve"),
        (["-c", "bc.toml", "requests", "show", "x"], "requests"),
        (["--config=bc.toml", "db", "upgrade"], "db"),
        (["-cbc.toml", "keys", "list"], "keys"),
        (["--help"], None),
        (["--help", "users"], None),  # the root's help, which lists every command
        ([], None),
        (["nosuch", "list"], None),
        (["-c", "users"], None),  # "users" is the value of -c here, not a command
    ],
)
def test_the_command_named_on_the_command_line(argv: list[str], expected: str | None) -> None:
    assert named_command(argv) == expected


def _run(*code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "\n".join(code)], capture_output=True, text=True)


def test_a_command_does_not_import_the_others() -> None:
    result = _run(
        "import sys",
        "sys.argv = ['backchannel', 'users', '--help']",
        "from backchannel.cli.main import main",
        "try:",
        "    main()",
        "except SystemExit:",
        "    pass",
        "others = ('uvicorn', 'alembic', 'backchannel.cli.serve')",
        "print(sorted(m for m in others if m in sys.modules))",
    )
    assert result.returncode == 0, result.stderr
    assert "list" in result.stdout  # the users group's own help
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_help_lists_every_command() -> None:
    result = _run(
        "import sys",
        "sys.argv = ['backchannel', '--help']",
        "from backchannel.cli.main import main",
        "main()",
    )
    assert result.returncode == 0, result.stderr
    listed = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("│ ")]
    assert [name for name in listed if name in EVERY_COMMAND] == list(EVERY_COMMAND)
