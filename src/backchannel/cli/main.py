"""Entry point of the ``backchannel`` command."""

from __future__ import annotations

from typing import Annotated

import typer

from backchannel.cli import (
    authenticator,
    clients,
    config,
    db,
    devices,
    keys,
    reports,
    requests,
    serve,
    users,
    worker,
)

app = typer.Typer(
    name="backchannel",
    help="Backchannel, a CIBA-first OpenID Provider.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(config.app, name="config")
app.add_typer(db.app, name="db")
app.add_typer(keys.app, name="keys")
app.add_typer(clients.app, name="clients")
app.add_typer(users.app, name="users")
app.add_typer(requests.app, name="requests")
app.add_typer(devices.app, name="devices")
app.add_typer(reports.app, name="reports")
app.add_typer(authenticator.app, name="authenticator")
serve.register(app)
worker.register(app)


@app.callback()
def root(
    ctx: typer.Context,
    config_file: Annotated[
        str | None,
        typer.Option("--config", "-c", help="TOML configuration file (or BACKCHANNEL_CONFIG)."),
    ] = None,
) -> None:
    ctx.obj = {"config": config_file}


def main() -> None:
    app()
