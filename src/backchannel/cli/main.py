"""Entry point of the ``backchannel`` command.

Each command lives in a module of its own. Importing all of them takes about 0.8 s
(uvicorn, Alembic, the authenticator's HTTP client, ...), a single one 0.2-0.3 s, so
``main`` registers only the command named on the command line; help, shell completion and
an unknown name get them all.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from typing import Annotated

import typer

# Modules of backchannel.cli, each named after its command: a group of commands (its ``app``)
GROUPS = (
    "config",
    "db",
    "keys",
    "clients",
    "users",
    "requests",
    "devices",
    "reports",
    "authenticator",
)
# or a single command (its function of that name), listed first in help as before.
COMMANDS = ("serve", "worker")
EVERY_COMMAND = (*COMMANDS, *GROUPS)
ROOT_OPTIONS_WITH_VALUE = ("--config", "-c")
COMPLETION_ENV = "_BACKCHANNEL_COMPLETE"


def root(
    ctx: typer.Context,
    config_file: Annotated[
        str | None,
        typer.Option("--config", "-c", help="TOML configuration file (or BACKCHANNEL_CONFIG)."),
    ] = None,
) -> None:
    ctx.obj = {"config": config_file}


def build(names: Sequence[str] = EVERY_COMMAND) -> typer.Typer:
    """The root command with the commands of ``names``."""
    app = typer.Typer(
        name="backchannel",
        help="Backchannel, a CIBA-first OpenID Provider.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )
    app.callback()(root)
    for name in names:
        module = importlib.import_module(f"backchannel.cli.{name}")
        if name in GROUPS:
            app.add_typer(module.app, name=name)
        else:
            app.command(name)(getattr(module, name))
    return app


def named_command(argv: Sequence[str]) -> str | None:
    """The command ``argv`` runs, when it is one of ours: the first word after the root's
    ``--config`` (whose value may be the next word). Any other root option (``--help``,
    completion) is about every command."""
    words = iter(argv)
    for word in words:
        if word in ROOT_OPTIONS_WITH_VALUE:
            next(words, None)
        elif word.startswith(("--config=", "-c")):
            continue
        elif word.startswith("-"):
            return None
        else:
            return word if word in EVERY_COMMAND else None
    return None


def main() -> None:
    name = None if COMPLETION_ENV in os.environ else named_command(sys.argv[1:])
    (build([name]) if name else build())()
