"""The AuthRequest state machine — the only module that changes a request's state.

    pending ──approve──▶ approved ──redeem──▶ redeemed
       │ └───deny────▶ denied
       └────expire───▶ expired

Every transition is a conditional update in storage (``WHERE state = expected``), so it
happens exactly once even when several processes race for it; the loser sees ``False``
and re-reads. Each transition appends one event to the request's timeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from backchannel.protocol.errors import Conflict
from backchannel.protocol.model import (
    AuthRequest,
    Consent,
    OutboxEntry,
    RefreshToken,
    RequestState,
    TimelineEvent,
)
from backchannel.protocol.provider import Provider

_ALLOWED = {
    RequestState.PENDING: {RequestState.APPROVED, RequestState.DENIED, RequestState.EXPIRED},
    RequestState.APPROVED: {RequestState.REDEEMED, RequestState.EXPIRED},
    RequestState.DENIED: {RequestState.EXPIRED},
    RequestState.EXPIRED: set(),
    RequestState.REDEEMED: set(),
}


class NotPending(Conflict):
    """The request was decided, expired or redeemed before this transition."""


def event(provider: Provider, kind: str, **detail: Any) -> TimelineEvent:
    return TimelineEvent(at=provider.clock.now(), kind=kind, detail=detail)


async def start(
    provider: Provider,
    request: AuthRequest,
    deliveries: Sequence[OutboxEntry] = (),
    *,
    consent: Consent | None = None,
    **detail: Any,
) -> None:
    """Store a new pending request with its ``created`` event, enqueueing ``deliveries``
    (device notices) and storing ``consent`` (what its devices show) in the same step."""
    await provider.storage.requests.create_request(
        request, event(provider, "created", **detail), deliveries, consent
    )


def is_overdue(provider: Provider, request: AuthRequest) -> bool:
    return provider.clock.now() >= request.expires_at


async def expire_if_overdue(provider: Provider, request: AuthRequest) -> AuthRequest:
    """Requests past their lifetime become expired the first time anyone looks."""
    if request.state in (RequestState.EXPIRED, RequestState.REDEEMED):
        return request
    if not is_overdue(provider, request):
        return request
    expired = replace(request, state=RequestState.EXPIRED)
    if await provider.storage.requests.transition(
        expired, request.state, event(provider, "expired")
    ):
        return expired
    return await _reload(provider, request)


async def expire(
    provider: Provider, request: AuthRequest, deliveries: Sequence[OutboxEntry] = ()
) -> bool:
    """pending (or approved/denied) -> expired now, enqueueing ``deliveries`` with it (a push
    client's ``expired_token``). False when the request changed first."""
    _check_allowed(request.state, RequestState.EXPIRED)
    expired = replace(request, state=RequestState.EXPIRED)
    return await provider.storage.requests.transition(
        expired, request.state, event(provider, "expired"), deliveries
    )


async def approve(
    provider: Provider,
    request: AuthRequest,
    *,
    acr: str | None,
    amr: tuple[str, ...],
    deliveries: Sequence[OutboxEntry] = (),
    **detail: Any,
) -> AuthRequest:
    """pending -> approved, recording how the user authenticated; ``deliveries`` (a ping)
    are enqueued in the same step."""
    now = provider.clock.now()
    approved = replace(
        request, state=RequestState.APPROVED, decided_at=now, auth_time=now, acr=acr, amr=amr
    )
    return await _decide(provider, request, approved, "approved", detail, deliveries)


async def deny(
    provider: Provider,
    request: AuthRequest,
    *,
    deliveries: Sequence[OutboxEntry] = (),
    **detail: Any,
) -> AuthRequest:
    """pending -> denied; ``deliveries`` (a ping, or a push error) go in the same step."""
    denied = replace(request, state=RequestState.DENIED, decided_at=provider.clock.now())
    return await _decide(provider, request, denied, "denied", detail, deliveries)


async def redeem(
    provider: Provider,
    request: AuthRequest,
    refresh_token: RefreshToken | None,
    deliveries: Sequence[OutboxEntry] = (),
) -> bool:
    """approved -> redeemed exactly once; the refresh token is stored and ``deliveries`` (the
    push of the tokens) enqueued in the same step."""
    _check_allowed(request.state, RequestState.REDEEMED)
    redeemed = replace(request, state=RequestState.REDEEMED)
    return await provider.storage.requests.redeem(
        redeemed, event(provider, "redeemed"), refresh_token, deliveries
    )


async def _decide(
    provider: Provider,
    current: AuthRequest,
    decided: AuthRequest,
    kind: str,
    detail: dict[str, Any],
    deliveries: Sequence[OutboxEntry] = (),
) -> AuthRequest:
    current = await expire_if_overdue(provider, current)
    if current.state is not RequestState.PENDING:
        raise NotPending(f"the request is {current.state.value}, not pending")
    if not await provider.storage.requests.transition(
        decided, RequestState.PENDING, event(provider, kind, **detail), deliveries
    ):
        latest = await _reload(provider, current)
        raise NotPending(f"the request is {latest.state.value}, not pending")
    return decided


def _check_allowed(source: RequestState, target: RequestState) -> None:
    if target not in _ALLOWED[source]:
        raise NotPending(f"cannot go from {source.value} to {target.value}")


async def _reload(provider: Provider, request: AuthRequest) -> AuthRequest:
    latest = await provider.storage.requests.get_request(request.id_hash)
    return latest if latest is not None else request
