"""Entry point of the ``backchannel`` command."""

from __future__ import annotations

from typing import Annotated

import typer

from backchannel.cli import clients, config, db, keys, requests, serve, users

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
serve.register(app)


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
