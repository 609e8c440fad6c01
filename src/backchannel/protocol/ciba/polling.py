"""The decision for one CIBA grant request at the token endpoint (CIBA §10.1, §11).

In order: a push-mode client may not use the grant (item 106); the auth_req_id must be
this client's (items 91, 104 — unknown and foreign look the same); an overdue request
expires (item 102); then the state answers: denied -> access_denied with 400 (item 103),
redeemed -> invalid_grant (item 97), pending -> slow_down or authorization_pending
(items 100, 101, P7; held first with long polling, item 93), approved -> tokens,
redeemed exactly once (item 97).
"""

from __future__ import annotations

from dataclasses import replace

from backchannel.protocol import tokens
from backchannel.protocol.ciba import lifecycle, long_poll
from backchannel.protocol.errors import (
    AccessDenied,
    AuthorizationPending,
    ExpiredToken,
    InvalidGrant,
    SlowDown,
    UnauthorizedClient,
)
from backchannel.protocol.model import (
    AuthRequest,
    Client,
    DeliveryMode,
    RequestState,
    TokenSet,
)
from backchannel.protocol.provider import Provider

_NOT_YOURS = "the auth_req_id is unknown, already used or was issued to another client"


async def poll(provider: Provider, client: Client, auth_req_id: str) -> TokenSet:
    """Tokens for an approved request, or the OAuth error that describes its state."""
    if client.delivery_mode is DeliveryMode.PUSH:
        raise UnauthorizedClient("push-mode clients receive tokens by push, not by polling")
    request = await _own_request(provider, client, auth_req_id)
    if request.delivery_mode is DeliveryMode.PUSH:
        raise UnauthorizedClient("this request delivers its result by push")
    request = await lifecycle.expire_if_overdue(provider, request)
    if request.state is RequestState.PENDING:
        request = await _poll_pending(provider, request)
    match request.state:
        case RequestState.APPROVED:
            return await redeem_approved(provider, client, request)
        case RequestState.PENDING:
            raise AuthorizationPending("the user has not answered yet")
        case RequestState.DENIED:
            raise AccessDenied("the user denied the request", status=400)
        case RequestState.EXPIRED:
            raise ExpiredToken("the auth_req_id has expired; start a new request")
        case RequestState.REDEEMED:
            raise InvalidGrant(_NOT_YOURS)


async def _own_request(provider: Provider, client: Client, auth_req_id: str) -> AuthRequest:
    request = await provider.storage.requests.get_request(provider.hasher.fast(auth_req_id))
    if request is None or request.client_id != client.client_id:
        raise InvalidGrant(_NOT_YOURS)
    return request


async def _poll_pending(provider: Provider, request: AuthRequest) -> AuthRequest:
    """Record this poll; too fast (or overlapping, item 95) -> slow_down. With long polling
    on (item 93) the poll is held first; the request as it is when the answer is due."""
    await _refuse_fast_poll(provider, request)
    seconds = long_poll.hold_seconds(provider, request)
    if seconds > 0:
        return await long_poll.hold(provider, request, seconds)
    polled = replace(request, last_polled_at=provider.clock.now())
    if not await provider.storage.requests.record_poll(
        polled, request.last_polled_at, lifecycle.event(provider, "polled")
    ):
        raise SlowDown("overlapping polls for the same auth_req_id")
    return polled


async def _refuse_fast_poll(provider: Provider, request: AuthRequest) -> None:
    """slow_down raises the interval for the rest of the request's life (item 101, P7).
    During a long poll the stored last poll lies ahead: any other poll is too fast."""
    now = provider.clock.now()
    previous = request.last_polled_at
    if previous is None or now - previous >= request.interval:
        return
    grown = request.interval + provider.settings.ciba.slow_down_increment
    updated = replace(request, last_polled_at=now, interval=grown)
    slow = lifecycle.event(provider, "slow_down", interval=grown)
    if await provider.storage.requests.record_poll(updated, previous, slow):
        raise SlowDown(f"poll at most every {grown} seconds")
    raise SlowDown(f"poll at most every {request.interval} seconds")


async def redeem_approved(provider: Provider, client: Client, request: AuthRequest) -> TokenSet:
    """Issue, then commit with the approved -> redeemed transition; a lost race leaves the
    tokens of this attempt unusable."""
    grant = tokens.Grant(
        subject=request.subject,
        scope=request.scope,
        auth_time=_auth_time(request),
        acr=request.acr,
        amr=request.amr,
        authorization_details=request.authorization_details,
    )
    issuance = await tokens.issue(
        provider, client, grant, with_refresh_token=provider.settings.tokens.issue_refresh_tokens
    )
    if not await lifecycle.redeem(provider, request, issuance.refresh_token):
        await tokens.discard(provider, issuance)
        raise InvalidGrant(_NOT_YOURS)
    return issuance.tokens


def _auth_time(request: AuthRequest) -> float:
    if request.auth_time is not None:
        return request.auth_time
    return request.decided_at if request.decided_at is not None else request.created_at
