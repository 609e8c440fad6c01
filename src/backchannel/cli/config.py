"""`backchannel config` commands: show the effective configuration, check it."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from backchannel.cli.common import settings_from
from backchannel.settings import toml_value

app = typer.Typer(help="Show and check the configuration.", no_args_is_help=True)


@app.command()
def show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of TOML.")] = False,
) -> None:
    """Print the effective configuration (file + environment + defaults), secrets masked."""
    settings = settings_from(ctx)
    data = settings.masked()
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    source = settings.config_file or "defaults and BACKCHANNEL_* environment"
    typer.echo(f"# effective configuration ({source})")
    typer.echo(to_toml(data))


@app.command()
def check(ctx: typer.Context) -> None:
    """Load and validate the configuration; exit code 2 and the offending field otherwise."""
    settings = settings_from(ctx)
    where = f" ({settings.config_file})" if settings.config_file else ""
    typer.echo(f"configuration is valid{where}")


def to_toml(data: dict[str, Any]) -> str:
    """Plain values first, then one [table] per section. TOML has no null: unset values
    are shown as comments."""
    lines = _pairs({k: v for k, v in data.items() if not isinstance(v, dict)})
    for name, section in data.items():
        if isinstance(section, dict):
            lines += ["", f"[{name}]", *_pairs(section)]
    return "\n".join(lines)


def _pairs(values: dict[str, Any]) -> list[str]:
    return [
        f"# {key} is not set" if value is None else f"{key} = {toml_value(value)}"
        for key, value in values.items()
    ]
