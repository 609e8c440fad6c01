"""`backchannel authenticator` commands: a headless authentication device (kiosks, tests,
demos) built on the device SDK. Its key (PEM, 0600) and device token live in a state file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from backchannel.cli.common import fail, run
from backchannel.device import Consent, DeviceClient, DeviceError

app = typer.Typer(
    help="A headless authentication device: enrol, listen, approve, deny.", no_args_is_help=True
)
DEFAULT_STATE = "~/.config/backchannel/authenticator.json"
StateOption = Annotated[
    str,
    typer.Option("--state", envvar="BACKCHANNEL_AUTHENTICATOR_STATE", help="The state file."),
]
RequestArg = Annotated[str, typer.Argument(help="The request id (from listen).")]


@app.command("enrol")
def enrol_device(
    code: Annotated[str, typer.Option("--code", help="The one-time enrolment code.")],
    server: Annotated[
        str, typer.Option("--server", help="The issuer URL.")
    ] = "http://127.0.0.1:8080",
    name: Annotated[str, typer.Option("--name", help="A name for this device.")] = "CLI",
    key_file: Annotated[
        str | None, typer.Option("--key-file", help="Keep the private key in this PEM file.")
    ] = None,
    state: StateOption = DEFAULT_STATE,
) -> None:
    """Enrol this device with a code from `backchannel devices enrol-code`."""
    device_id = run(_enrol(server, code, name, _path(state), _path(key_file) if key_file else None))
    typer.echo(f"enrolled {device_id}")


@app.command()
def listen(
    state: StateOption = DEFAULT_STATE,
    once: Annotated[bool, typer.Option("--once", help="Stop after the first request.")] = False,
) -> None:
    """Print incoming requests with their content (JSON lines), as they arrive."""
    run(_listen(_load(state), once))


@app.command()
def approve(
    request_id: RequestArg,
    choice: Annotated[
        str | None, typer.Option("--choice", help="The binding code shown on the other device.")
    ] = None,
    state: StateOption = DEFAULT_STATE,
) -> None:
    """Approve a pending request (signed with the device key)."""
    typer.echo(run(_decide(_load(state), request_id, "approve", choice)))


@app.command()
def deny(
    request_id: RequestArg,
    report: Annotated[
        bool, typer.Option("--report", help='"This wasn\'t me": report and pause the client.')
    ] = False,
    state: StateOption = DEFAULT_STATE,
) -> None:
    """Deny a pending request."""
    typer.echo(run(_decide(_load(state), request_id, "report" if report else "deny", None)))


def _path(value: str) -> Path:
    return Path(os.path.expanduser(value))


def _load(state: str) -> DeviceClient:
    path = _path(state)
    if not path.exists():
        fail(f"no authenticator state at {path}; run `backchannel authenticator enrol` first")
    return DeviceClient.load(path)


def _print(consent: Consent) -> None:
    view = {
        "request_id": consent.request_id,
        "content": consent.document,
        "requires_user_verification": consent.requires_user_verification,
        "binding_choices": consent.binding_choices,
    }
    typer.echo(json.dumps(view, ensure_ascii=False), nl=True)


async def _listen(device: DeviceClient, once: bool) -> None:
    try:
        async for event in device.listen():
            if event.kind != "request":
                continue
            try:
                _print(await device.get(event.request_id))
            except DeviceError:
                continue
            if once:
                return
    except DeviceError as exc:
        fail(str(exc))
    finally:
        await device.aclose()


async def _decide(device: DeviceClient, request_id: str, decision: str, choice: str | None) -> str:
    try:
        consent = await device.get(request_id)
        if decision == "approve":
            return await device.approve(consent, binding_choice=choice)
        if decision == "report":
            return await device.report(consent)
        return await device.deny(consent)
    except DeviceError as exc:
        fail(str(exc))
    finally:
        await device.aclose()


async def _enrol(server: str, code: str, name: str, state: Path, key_file: Path | None) -> str:
    try:
        device = await DeviceClient.enrol_with_code(server, code, name)
    except DeviceError as exc:
        fail(str(exc))
    try:
        device.save(state, key_file)
    finally:
        await device.aclose()
    return device.device_id
