"""A new request reaches the user's devices; anti push-bombing (issue item 6).

Called by ``protocol/endpoints/backchannel.py`` (framework-free):

1. ``admit`` — after the hint is resolved, before anything is stored:
   - a client with ``binding_code_choice`` must send a binding_message (``invalid_request``);
   - a client paused for this user after a "This wasn't me" report → ``access_denied``;
   - a user with an enrolled device and ``devices.max_pending_per_user`` pending requests
     → ``access_denied``. Users without a device are reached by other channels (operator
     CLI, approval hook), which cannot be bombed, so the cap does not apply to them.
   It returns the user's active devices, read once per request: ``plan_notices`` uses them.
2. The endpoint fixes the content the device will show (``consent.new_consent``).
3. ``plan_notices`` — one ``webpush`` outbox entry per device with a push subscription;
   none when the user already got ``devices.max_notices_per_window`` notices in the last
   ``devices.notice_window_seconds``: then the request is still accepted (and visible in
   the inbox) but no notice is sent. The entries and the consent are stored in the same
   transaction as the request (``lifecycle.start(..., deliveries, consent=...)``), so a
   request that cannot be stored leaves neither behind; the outbox worker sends them.
4. ``announce`` — after the request is stored: count the notice and wake open apps (SSE,
   ``user:<subject>`` topic), or write ``notice_suppressed`` to the timeline.

Why this reveals nothing new: ``access_denied`` is only ever given for a user that exists —
but an authenticated client already learns that from ``unknown_user_id`` (CIBA §13); and a
suppressed notice answers exactly like a sent one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from backchannel.protocol.ciba import lifecycle
from backchannel.protocol.ciba.delivery import Payload, new_entry
from backchannel.protocol.errors import AccessDenied, InvalidRequest
from backchannel.protocol.events import user_topic
from backchannel.protocol.model import (
    JSON,
    AuthRequest,
    Client,
    Consent,
    Device,
    OutboxEntry,
    User,
)
from backchannel.protocol.provider import Provider

# The outbox entry kind of a Web Push notice (sent by ``authenticator.webpush``).
WEBPUSH = "webpush"


async def admit(
    provider: Provider, client: Client, user: User, binding_message: str | None
) -> tuple[Device, ...]:
    """Refuse the request (anti push-bombing) or return the user's active devices."""
    if client.binding_code_choice and binding_message is None:
        raise InvalidRequest("this client must send a binding_message (binding code choice)")
    now = provider.clock.now()
    pause, known = await provider.storage.devices.pause_and_devices(client.client_id, user.subject)
    if pause is not None and pause.until > now:
        raise AccessDenied("the user reported a request from this client; try again later")
    devices = tuple(d for d in known if d.active)
    if not devices:
        return devices
    limit = provider.settings.devices.max_pending_per_user
    if await provider.storage.requests.count_pending(user.subject, now) >= limit:
        raise AccessDenied("the user has too many pending requests")
    return devices


@dataclass(frozen=True, slots=True)
class NoticePlan:
    """What a new request sends its user's devices: ``deliveries`` (one ``webpush`` outbox
    entry per subscribed device) go in with the request (``lifecycle.start``)."""

    devices: int = 0
    deliveries: tuple[OutboxEntry, ...] = ()
    suppressed: bool = False


async def plan_notices(
    provider: Provider,
    client: Client,
    request: AuthRequest,
    consent: Consent,
    devices: Sequence[Device],
) -> NoticePlan:
    """The notices for a new request to the user's active ``devices`` (from ``admit``),
    before it is stored; none beyond the notice cap."""
    if not devices:
        return NoticePlan()
    settings = provider.settings.devices
    sent = await provider.storage.devices.count_notices(
        request.subject, provider.clock.now() - settings.notice_window_seconds
    )
    if sent >= settings.max_notices_per_window:
        return NoticePlan(devices=len(devices), suppressed=True)
    message = push_message(client, request, consent)
    entries = tuple(
        _webpush_entry(provider, request, device, message)
        for device in devices
        if device.push is not None
    )
    return NoticePlan(devices=len(devices), deliveries=entries)


async def announce(provider: Provider, request: AuthRequest, plan: NoticePlan) -> None:
    """After the request (and its Web Push entries) is stored: count the notice, wake open
    apps (SSE) and write the timeline."""
    if plan.devices == 0:
        return
    if plan.suppressed:
        await _event(provider, request, "notice_suppressed")
        return
    await provider.storage.devices.add_notice(request.subject, provider.clock.now())
    await provider.events.publish(user_topic(request.subject))
    await _event(
        provider, request, "device_notified", devices=plan.devices, push=len(plan.deliveries)
    )


def _webpush_entry(
    provider: Provider, request: AuthRequest, device: Device, message: JSON
) -> OutboxEntry:
    assert device.push is not None
    body: JSON = {
        "device_id": device.device_id,
        "subscription": {
            "endpoint": device.push.endpoint,
            "keys": {"p256dh": device.push.p256dh, "auth": device.push.auth},
        },
        "message": message,
    }
    return new_entry(
        provider,
        WEBPUSH,
        device.push.endpoint,
        Payload(body, bearer=None),
        request=request,
        deliver_until=request.expires_at,
    )


def push_message(client: Client, request: AuthRequest, consent: Consent) -> JSON:
    """The Web Push payload (encrypted on the wire); no binding message when the device
    must make the user pick it."""
    return {
        "type": "request",
        "request_id": request.id_hash,
        "client_name": client.name,
        "binding_message": None if consent.binding_choices else request.binding_message,
    }


async def _event(provider: Provider, request: AuthRequest, kind: str, **detail: object) -> None:
    await provider.storage.requests.add_event(
        request.id_hash, lifecycle.event(provider, kind, **detail)
    )
