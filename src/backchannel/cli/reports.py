"""`backchannel reports` commands: "This wasn't me" reports from authentication devices."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from backchannel.cli.common import console, open_provider, run, settings_from
from backchannel.protocol.model import Report
from backchannel.settings import Settings

app = typer.Typer(help="Reports of requests users did not start.", no_args_is_help=True)


@app.command("list")
def list_reports(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")] = False,
) -> None:
    """Reports, newest first."""
    reports = run(_list(settings_from(ctx), limit))
    views = [report_view(r) for r in reports]
    if as_json:
        typer.echo(json.dumps(views, indent=2))
        return
    if not reports:
        typer.echo("no reports")
        return
    table = Table("at", "client", "user", "request", "device")
    for view in views:
        table.add_row(*(escape(str(view[k])) for k in ("at", "client_id", "subject", "ref",
                                                          "device_id")))  # fmt: skip
    console.print(table)


def report_view(report: Report) -> dict[str, str]:
    return {
        "at": datetime.fromtimestamp(report.at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "client_id": report.client_id,
        "subject": report.subject,
        "ref": report.id_hash.removeprefix("hmac:")[:12],
        "device_id": report.device_id,
    }


async def _list(settings: Settings, limit: int) -> list[Report]:
    async with open_provider(settings) as provider:
        return await provider.storage.devices.list_reports(limit)
