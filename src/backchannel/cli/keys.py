"""`backchannel keys` commands: list the signing keys, rotate them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from backchannel.cli.common import console, fail, open_provider, run, settings_from
from backchannel.protocol.keys import KeyRing, KeyRingError, KeyStatus
from backchannel.protocol.model import SigningKey
from backchannel.settings import Settings

app = typer.Typer(help="Signing keys: list and rotate.", no_args_is_help=True)

_STATUS_STYLE = {
    KeyStatus.SIGNING: "bold green",
    KeyStatus.NEXT: "cyan",
    KeyStatus.RETIRING: "yellow",
    KeyStatus.RETIRED: "dim",
}


@app.command("list")
def list_keys(ctx: typer.Context) -> None:
    """Every signing key with its schedule and status."""
    settings = settings_from(ctx)
    console.print(run(_key_table(settings)))


@app.command("rotate")
def rotate(
    ctx: typer.Context,
    alg: Annotated[
        str | None,
        typer.Option("--alg", help="Rotate only this algorithm (default: all configured)."),
    ] = None,
) -> None:
    """Publish a new key now; it starts signing after keys.rotation_delay."""
    settings = settings_from(ctx)
    if alg is not None and alg not in settings.keys.algorithms:
        fail(f"--alg {alg} is not one of keys.algorithms ({', '.join(settings.keys.algorithms)})")
    try:
        created = run(_rotate(settings, alg))
    except KeyRingError as exc:
        fail(str(exc))
    for key in created:
        console.print(
            f"new key [bold]{key.kid}[/] ({key.alg}) published now, "
            f"signs from {_when(key.sign_from)}",
            highlight=False,
        )


async def _key_table(settings: Settings) -> Table:
    async with open_provider(settings) as provider:
        return _table(provider.keys)


async def _rotate(settings: Settings, alg: str | None) -> list[SigningKey]:
    async with open_provider(settings) as provider:
        return await provider.keys.rotate(alg)


def _table(ring: KeyRing) -> Table:
    table = Table(title="Signing keys")
    for column in ("kid", "alg", "created", "signs from", "signs until", "published until"):
        # kids are 16 characters: never cut them, operators copy them
        table.add_column(column, no_wrap=True, min_width=16 if column == "kid" else None)
    table.add_column("status")
    keys = ring.keys()
    for key in keys:
        status = ring.status(key)
        table.add_row(
            key.kid,
            key.alg,
            _when(key.created_at),
            _when(key.sign_from),
            _when(key.sign_until),
            _when(key.publish_until),
            f"[{_STATUS_STYLE[status]}]{status.value}[/]",
        )
    return table


def _when(moment: float | None) -> str:
    if moment is None:
        return "-"
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
