"""`backchannel worker`: the outbox worker and the expiry sweeper, without the HTTP server.

Run as many as you like next to (or instead of the workers inside) ``backchannel serve``
(set ``outbox.run_in_server = false`` then): on PostgreSQL they share the work, on SQLite
only one of them delivers at a time (the others wait for its lease).
"""

from __future__ import annotations

import typer

from backchannel.cli.common import console, open_provider, run, settings_from
from backchannel.settings import Settings


def worker(ctx: typer.Context) -> None:
    """Deliver ping/push notifications and expire overdue requests, until interrupted."""
    settings = settings_from(ctx)
    try:
        run(_work(settings))
    except KeyboardInterrupt:
        console.print("worker stopped")


async def _work(settings: Settings) -> None:
    from backchannel.outbox.runner import run_forever

    async with open_provider(settings) as provider:
        console.print(f"Backchannel worker for {settings.issuer}: delivering the outbox")
        await run_forever(provider)
