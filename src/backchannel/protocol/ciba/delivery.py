"""Ping and push delivery (CIBA §10.2, §10.3): what goes into the outbox, and when.

- A ping or push request keeps its auth_req_id and client_notification_token sealed in
  ``AuthRequest.delivery_secret`` (we store only the auth_req_id's hash otherwise).
- Ping: approval or denial enqueues ``{"auth_req_id"}`` in the same transaction as the
  decision; the client then calls the token endpoint as in poll mode.
- Push, denial: ``{"error": "access_denied", "auth_req_id"}`` with the denial.
- Push, approval: the request is approved, then the tokens are issued and the request is
  redeemed with the token response enqueued in one transaction (with the refresh token).
  A crash between the two leaves an approved push request, which ``push_unpushed`` (run by
  the sweeper) finishes later: the redeem is conditional, so only one push ever goes out.
- Push, expiry: ``{"error": "expired_token", "auth_req_id"}``, enqueued with the expiry by
  ``sweep_expired``, or by ``push_unpushed`` for an approval whose tokens had not gone out
  when the request expired. It is the one delivery allowed to go out after the request's
  expiry.

Every payload (body and bearer token) is sealed in the entry with the entry id as context.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from backchannel.protocol import tokens
from backchannel.protocol.ciba import lifecycle
from backchannel.protocol.model import (
    JSON,
    AuthRequest,
    DeliveryMode,
    OutboxEntry,
    RequestState,
)
from backchannel.protocol.provider import Provider

PING = "ping"
PUSH = "push"
PUSH_ERROR = "push_error"
# An approved push request older than this without its push is finished by the sweeper.
UNPUSHED_GRACE_SECONDS = 10.0
_ENTRY_ID_BYTES = 16


@dataclass(frozen=True, slots=True)
class RequestSecret:
    auth_req_id: str
    client_notification_token: str


@dataclass(frozen=True, slots=True)
class Payload:
    body: JSON
    bearer: str | None


def seal_request_secret(
    provider: Provider, id_hash: str, auth_req_id: str, notification_token: str | None
) -> str | None:
    """The ``delivery_secret`` of a new request (None for poll requests)."""
    if notification_token is None:
        return None
    value = {"auth_req_id": auth_req_id, "client_notification_token": notification_token}
    return provider.sealer.seal(value, context=id_hash)


def open_request_secret(provider: Provider, request: AuthRequest) -> RequestSecret | None:
    if request.delivery_secret is None:
        return None
    value = provider.sealer.open(request.delivery_secret, context=request.id_hash)
    return RequestSecret(str(value["auth_req_id"]), str(value["client_notification_token"]))


def open_payload(provider: Provider, entry: OutboxEntry) -> Payload:
    value = provider.sealer.open(entry.payload, context=_entry_context(entry.id))
    bearer = value.get("bearer")
    return Payload(body=dict(value["body"]), bearer=str(bearer) if bearer is not None else None)


def new_entry(
    provider: Provider,
    kind: str,
    url: str,
    payload: Payload,
    *,
    request: AuthRequest | None = None,
    client_id: str | None = None,
    deliver_until: float | None = None,
) -> OutboxEntry:
    """A pending outbox entry, due now, with its payload sealed."""
    now = provider.clock.now()
    entry_id = provider.random.token(_ENTRY_ID_BYTES)
    sealed = provider.sealer.seal(
        {"body": payload.body, "bearer": payload.bearer}, context=_entry_context(entry_id)
    )
    return OutboxEntry(
        id=entry_id,
        kind=kind,
        url=url,
        payload=sealed,
        created_at=now,
        updated_at=now,
        next_attempt_at=now,
        id_hash=request.id_hash if request is not None else None,
        client_id=client_id or (request.client_id if request is not None else None),
        deliver_until=deliver_until,
    )


async def decision_deliveries(
    provider: Provider, request: AuthRequest, *, approved: bool
) -> list[OutboxEntry]:
    """What to enqueue with an approval or denial: a ping, or a push denial. (A push
    approval's tokens go out with the redeem: ``push_tokens``.)"""
    if request.delivery_mode is DeliveryMode.PING:
        return await _notification(provider, request, PING, lambda s: {"auth_req_id": s})
    if request.delivery_mode is DeliveryMode.PUSH and not approved:
        return await _notification(provider, request, PUSH_ERROR, _error_body("access_denied"))
    return []


async def push_tokens(provider: Provider, request: AuthRequest) -> bool:
    """Issue the tokens of an approved push request and redeem it, enqueueing the token
    response in the same transaction. False when someone else redeemed it first."""
    client = await provider.storage.clients.get_client(request.client_id)
    secret = open_request_secret(provider, request)
    if client is None or secret is None or client.notification_endpoint is None:
        return False
    issuance = await tokens.issue(
        provider,
        client,
        _grant(request),
        with_refresh_token=provider.settings.tokens.issue_refresh_tokens,
        push_auth_req_id=secret.auth_req_id,
    )
    body = {**issuance.tokens.response(), "auth_req_id": secret.auth_req_id}
    entry = new_entry(
        provider,
        PUSH,
        client.notification_endpoint,
        Payload(body, secret.client_notification_token),
        request=request,
        deliver_until=request.expires_at,
    )
    if await lifecycle.redeem(provider, request, issuance.refresh_token, [entry]):
        return True
    await tokens.discard(provider, issuance)
    return False


async def after_approval(provider: Provider, approved: AuthRequest) -> None:
    """A push approval's tokens go out at once."""
    if approved.delivery_mode is DeliveryMode.PUSH:
        await push_tokens(provider, approved)


async def expire_push_if_overdue(provider: Provider, request: AuthRequest) -> None:
    """A late decision on a push request expires it with its ``expired_token`` push (the
    decision then fails as for any expired request)."""
    if (
        request.delivery_mode is DeliveryMode.PUSH
        and request.state is RequestState.PENDING
        and lifecycle.is_overdue(provider, request)
    ):
        await expire_push(provider, request)


async def expire_push(provider: Provider, request: AuthRequest) -> bool:
    """Expire one pending (or approved, never pushed) push request with its
    ``expired_token`` push."""
    deliveries = await _notification(
        provider, request, PUSH_ERROR, _error_body("expired_token"), until_expiry=False
    )
    return await lifecycle.expire(provider, request, deliveries)


async def sweep_expired(provider: Provider, limit: int = 1000) -> int:
    """Expire overdue pending requests: push ones one by one with their error push, the rest
    in bulk. Returns how many expired."""
    now = provider.clock.now()
    expired = 0
    for request in await provider.storage.requests.list_overdue(now, DeliveryMode.PUSH, limit):
        expired += await expire_push(provider, request)
    modes = (DeliveryMode.POLL, DeliveryMode.PING)
    return expired + await provider.storage.requests.expire_overdue(now, limit, modes)


async def push_unpushed(provider: Provider) -> int:
    """Finish approved push requests whose tokens were never pushed (a crash between the
    approval and the redeem): push the tokens, or, once the request has expired, expire it
    with its ``expired_token`` push. Returns how many were finished here."""
    now = provider.clock.now()
    requests = provider.storage.requests
    finished = 0
    for request in await requests.list_unpushed(now - UNPUSHED_GRACE_SECONDS, limit=100):
        if lifecycle.is_overdue(provider, request):
            finished += await expire_push(provider, request)
        else:
            finished += await push_tokens(provider, request)
    return finished


async def _notification(
    provider: Provider,
    request: AuthRequest,
    kind: str,
    body: Callable[[str], JSON],
    *,
    until_expiry: bool = True,
) -> list[OutboxEntry]:
    client = await provider.storage.clients.get_client(request.client_id)
    secret = open_request_secret(provider, request)
    if client is None or client.notification_endpoint is None or secret is None:
        return []
    return [
        new_entry(
            provider,
            kind,
            client.notification_endpoint,
            Payload(body(secret.auth_req_id), secret.client_notification_token),
            request=request,
            deliver_until=request.expires_at if until_expiry else None,
        )
    ]


def _error_body(error: str) -> Callable[[str], JSON]:
    return lambda auth_req_id: {"error": error, "auth_req_id": auth_req_id}


def _grant(request: AuthRequest) -> tokens.Grant:
    auth_time = request.auth_time if request.auth_time is not None else request.decided_at
    return tokens.Grant(
        subject=request.subject,
        scope=request.scope,
        auth_time=auth_time if auth_time is not None else request.created_at,
        acr=request.acr,
        amr=request.amr,
        authorization_details=request.authorization_details,
    )


def _entry_context(entry_id: str) -> str:
    return f"outbox:{entry_id}"
