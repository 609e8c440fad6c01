"""`backchannel devices` commands: enrolment codes, the devices of a user, revocation."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import segno
import typer
from rich.markup import escape
from rich.table import Table

from backchannel.authenticator import enrol
from backchannel.cli.common import console, fail, open_provider, run, settings_from
from backchannel.protocol.model import Device
from backchannel.protocol.users import find_by_login_hint
from backchannel.settings import Settings

app = typer.Typer(help="Authentication devices: enrol-code, list, revoke.", no_args_is_help=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")]


@app.command("enrol-code")
def enrol_code(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="Username, e-mail or phone of the user.")],
    qr: Annotated[bool, typer.Option("--qr/--no-qr", help="Print a terminal QR code.")] = True,
    as_json: JsonFlag = False,
) -> None:
    """A one-time enrolment code (single use, devices.enrol_code_ttl seconds)."""
    issued = run(_issue(settings_from(ctx), user))
    if as_json:
        view = {"code": issued.code, "expires_at": _iso(issued.expires_at), "url": issued.url}
        typer.echo(json.dumps(view, indent=2))
        return
    typer.echo(f"code:    {issued.code}")
    typer.echo(f"expires: {_when(issued.expires_at)}")
    typer.echo(f"enrol:   {issued.url}")
    if qr:
        segno.make(issued.url).terminal(compact=True)


@app.command("list")
def list_devices(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Argument(help="Only this user's devices.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Enrolled devices, oldest first (revoked ones too)."""
    devices = run(_list(settings_from(ctx), user))
    if as_json:
        typer.echo(json.dumps([device_view(d) for d in devices], indent=2))
        return
    if not devices:
        typer.echo("no devices")
        return
    table = Table("device", "user", "name", "created", "last seen", "state", "webauthn", "push")
    for d in devices:
        view = device_view(d)
        table.add_row(
            d.device_id, escape(d.subject), escape(d.name), str(view["created"]),
            str(view["last_seen"] or "-"), str(view["state"]), str(len(d.credentials)),
            "yes" if d.push else "no",
        )  # fmt: skip
    console.print(table)


@app.command()
def revoke(
    ctx: typer.Context, device_id: Annotated[str, typer.Argument(help="The device id (d_...).")]
) -> None:
    """Revoke a device: its token and key stop working at once, and its open event stream
    ends (at once with a shared event bus, events.backend postgres or redis; otherwise at
    its next keep-alive, within 15 s)."""
    if not run(_revoke(settings_from(ctx), device_id)):
        fail(f"no active device {device_id}")
    typer.echo(f"revoked {device_id}")


def device_view(device: Device) -> dict[str, object]:
    return {
        "device_id": device.device_id,
        "subject": device.subject,
        "name": device.name,
        "created": _when(device.created_at),
        "last_seen": _when(device.last_seen_at) if device.last_seen_at else None,
        "state": "revoked" if device.revoked_at is not None else "active",
        "webauthn_credentials": len(device.credentials),
        "push": device.push is not None,
    }


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


async def _issue(settings: Settings, who: str) -> enrol.IssuedCode:
    async with open_provider(settings) as provider:
        user = await find_by_login_hint(provider.storage.users, who)
        if user is None:
            fail(f"no user {who!r}")
        return await enrol.issue_code(provider, user)


async def _list(settings: Settings, who: str | None) -> list[Device]:
    async with open_provider(settings) as provider:
        subject = None
        if who is not None:
            user = await find_by_login_hint(provider.storage.users, who)
            if user is None:
                fail(f"no user {who!r}")
            subject = user.subject
        return await provider.storage.devices.list_devices(subject)


async def _revoke(settings: Settings, device_id: str) -> bool:
    async with open_provider(settings) as provider:
        return await enrol.revoke(provider, device_id)
