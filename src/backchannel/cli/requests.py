"""`backchannel requests` commands: look at backchannel authentication requests and decide
them by hand (an operator acting as the authentication device).

A request is named by its reference (``ref``, a prefix of the hashed auth_req_id, shown by
``list``); any unique prefix works, with or without the ``hmac:`` scheme.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from backchannel.cli.common import console, fail, open_provider, run, settings_from
from backchannel.protocol.ciba import lifecycle, outcome
from backchannel.protocol.errors import OAuthError
from backchannel.protocol.model import JSON, AuthRequest, RequestState, TimelineEvent
from backchannel.settings import Settings

app = typer.Typer(
    help="Backchannel authentication requests: list, show, approve, deny.",
    no_args_is_help=True,
)

RefArg = Annotated[str, typer.Argument(help="Request reference (a unique prefix, from list).")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")]


@app.command("list")
def list_requests(
    ctx: typer.Context,
    state: Annotated[
        RequestState | None, typer.Option("--state", help="Only requests in this state.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Requests, newest first."""
    requests = run(_list(settings_from(ctx), state, limit))
    if as_json:
        typer.echo(json.dumps([request_view(r) for r in requests], indent=2))
        return
    if not requests:
        typer.echo("no requests")
        return
    console.print(_request_table(requests))


@app.command()
def show(ctx: typer.Context, ref: RefArg, as_json: JsonFlag = False) -> None:
    """One request and its timeline."""
    with _reported():
        request, timeline = run(_show(settings_from(ctx), ref))
    if as_json:
        view = {**request_view(request), "timeline": [event_view(e) for e in timeline]}
        typer.echo(json.dumps(view, indent=2))
        return
    console.print(_details_table(request))
    console.print(_timeline_table(timeline))


@app.command()
def approve(
    ctx: typer.Context,
    ref: RefArg,
    acr: Annotated[
        str | None, typer.Option("--acr", help="Authentication context class achieved.")
    ] = None,
) -> None:
    """Approve a pending request on the user's behalf."""
    with _reported():
        decided = run(_decide(settings_from(ctx), ref, approve=True, acr=acr))
    typer.echo(f"approved request {decided.ref}" + (f" (acr {decided.acr})" if decided.acr else ""))


@app.command()
def deny(ctx: typer.Context, ref: RefArg) -> None:
    """Deny a pending request on the user's behalf."""
    with _reported():
        decided = run(_decide(settings_from(ctx), ref, approve=False, acr=None))
    typer.echo(f"denied request {decided.ref}")


async def _list(settings: Settings, state: RequestState | None, limit: int) -> list[AuthRequest]:
    async with open_provider(settings) as provider:
        return await provider.storage.requests.list_requests(state, limit)


async def _show(settings: Settings, ref: str) -> tuple[AuthRequest, list[TimelineEvent]]:
    async with open_provider(settings) as provider:
        request = await outcome.find_by_ref(provider, ref)
        request = await lifecycle.expire_if_overdue(provider, request)
        return request, await provider.storage.requests.timeline(request.id_hash)


async def _decide(settings: Settings, ref: str, *, approve: bool, acr: str | None) -> AuthRequest:
    async with open_provider(settings) as provider:
        request = await outcome.find_by_ref(provider, ref)
        return await outcome.decide(provider, request, approve=approve, channel="cli", acr=acr)


@contextmanager
def _reported() -> Iterator[None]:
    """Protocol refusals (not found, ambiguous, not pending) become exit code 2."""
    try:
        yield
    except OAuthError as exc:
        fail(exc.description or exc.error)


def request_view(request: AuthRequest) -> JSON:
    return {
        "ref": request.ref,
        "client_id": request.client_id,
        "subject": request.subject,
        "state": request.state.value,
        "scope": " ".join(request.scope),
        "delivery_mode": request.delivery_mode.value,
        "created_at": _iso(request.created_at),
        "expires_at": _iso(request.expires_at),
        "interval": request.interval,
        "binding_message": request.binding_message,
        "acr_values": list(request.acr_values),
        "acr": request.acr,
        "amr": list(request.amr),
        "last_polled_at": _iso(request.last_polled_at),
        "decided_at": _iso(request.decided_at),
    }


def event_view(event: TimelineEvent) -> JSON:
    return {"at": _iso(event.at), "kind": event.kind, "detail": event.detail}


def _request_table(requests: list[AuthRequest]) -> Table:
    table = Table("ref", "client", "subject", "state", "created", "expires", "binding message")
    table.columns[0].no_wrap = True
    table.columns[0].min_width = 10
    for r in requests:
        table.add_row(
            r.ref,
            _text(r.client_id),
            _text(r.subject),
            _styled_state(r.state),
            _iso(r.created_at),
            _iso(r.expires_at),
            _text(r.binding_message),
        )
    return table


def _details_table(request: AuthRequest) -> Table:
    table = Table("field", "value", title=f"request {request.ref}", show_header=False)
    for name, value in request_view(request).items():
        if name == "state":
            table.add_row(name, _styled_state(request.state))
        else:
            table.add_row(name, _text(value))
    return table


def _timeline_table(timeline: list[TimelineEvent]) -> Table:
    table = Table("time", "event", "details", title="timeline")
    for event in timeline:
        details = ", ".join(f"{k}={_text(v)}" for k, v in sorted(event.detail.items()))
        table.add_row(_iso(event.at), event.kind, details)
    return table


_STATE_STYLE = {
    RequestState.PENDING: "yellow",
    RequestState.APPROVED: "green",
    RequestState.REDEEMED: "bold green",
    RequestState.DENIED: "red",
    RequestState.EXPIRED: "dim",
}


def _styled_state(state: RequestState) -> str:
    return f"[{_STATE_STYLE[state]}]{state.value}[/]"


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value) or "-"
    # Client-supplied text (binding messages, details) must not be read as rich markup.
    return escape(str(value))


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")
