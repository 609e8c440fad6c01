"""`backchannel serve`: migrate (embedded SQLite), optionally seed the demo, run uvicorn."""

from __future__ import annotations

import os
from typing import Annotated

import typer
import uvicorn

from backchannel.cli.common import console, open_provider, run, settings_from
from backchannel.settings import CONFIG_ENV, Settings
from backchannel.web.uvicorn_http import CoalescingHttpToolsProtocol


def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Listen address (server.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (server.port).")] = None,
    workers: Annotated[int | None, typer.Option(help="Processes (server.workers).")] = None,
    seed_demo: Annotated[
        bool, typer.Option("--seed-demo", help="Create the demo client and user if empty.")
    ] = False,
) -> None:
    """Start the OpenID Provider."""
    settings = settings_from(ctx)
    run(_prepare(settings, seed_demo))
    if settings.config_file is not None:
        # Worker processes re-read the configuration from the same file.
        os.environ[CONFIG_ENV] = str(settings.config_file.resolve())
    uvicorn.run(
        "backchannel.app:create_app",
        factory=True,
        host=host or settings.server.host,
        port=port or settings.server.port,
        workers=workers or settings.server.workers,
        access_log=False,
        log_level="warning",
        server_header=False,
        proxy_headers=False,
        http=CoalescingHttpToolsProtocol,
    )


async def _prepare(settings: Settings, seed_demo: bool) -> None:
    """Migrate and create the signing keys once, before any worker starts."""
    from backchannel.seed import seed_demo as seed

    async with open_provider(settings) as provider:
        if seed_demo:
            for line in await seed(provider):
                console.print(line)
    console.print(
        f"Backchannel {settings.issuer} — database {settings.database.url.split('://')[0]}"
    )
