"""A new request reaches the user's devices; anti push-bombing (issue item 6).

Called by ``protocol/endpoints/backchannel.py`` (framework-free):

1. ``admit`` — after the hint is resolved, before anything is stored:
   - a client with ``binding_code_choice`` must send a binding_message (``invalid_request``);
   - a client paused for this user after a "This wasn't me" report → ``access_denied``;
   - a user with an enrolled device and ``devices.max_pending_per_user`` pending requests
     → ``access_denied``. Users without a device are reached by other channels (operator
     CLI, approval hook), which cannot be bombed, so the cap does not apply to them.
2. ``record_consent`` — the content the device will show is fixed and stored.
3. ``announce`` — after the request is stored: wake open apps (SSE, ``user:<subject>``
   topic) and send Web Push, unless the user already got ``devices.max_notices_per_window``
   notices in the last ``devices.notice_window_seconds``: then the request is still
   accepted (and visible in the inbox) but no notice is sent, and its timeline says
   ``notice_suppressed``.

Why this reveals nothing new: ``access_denied`` is only ever given for a user that exists —
but an authenticated client already learns that from ``unknown_user_id`` (CIBA §13); and a
suppressed notice answers exactly like a sent one.
"""

from __future__ import annotations

from backchannel.authenticator.consent import new_consent
from backchannel.protocol.ciba import lifecycle
from backchannel.protocol.errors import AccessDenied, InvalidRequest
from backchannel.protocol.events import user_topic
from backchannel.protocol.model import JSON, AuthRequest, Client, Consent, User
from backchannel.protocol.provider import Provider


async def admit(
    provider: Provider, client: Client, user: User, binding_message: str | None
) -> None:
    if client.binding_code_choice and binding_message is None:
        raise InvalidRequest("this client must send a binding_message (binding code choice)")
    now = provider.clock.now()
    pause = await provider.storage.devices.get_pause(client.client_id, user.subject)
    if pause is not None and pause.until > now:
        raise AccessDenied("the user reported a request from this client; try again later")
    if not await _has_active_device(provider, user.subject):
        return
    limit = provider.settings.devices.max_pending_per_user
    if await provider.storage.requests.count_pending(user.subject, now) >= limit:
        raise AccessDenied("the user has too many pending requests")


async def _has_active_device(provider: Provider, subject: str) -> bool:
    return any(d.active for d in await provider.storage.devices.list_devices(subject))


async def record_consent(provider: Provider, client: Client, request: AuthRequest) -> Consent:
    consent = new_consent(provider, client, request)
    await provider.storage.devices.add_consent(consent)
    return consent


async def announce(
    provider: Provider, client: Client, request: AuthRequest, consent: Consent
) -> None:
    devices = [d for d in await provider.storage.devices.list_devices(request.subject) if d.active]
    if not devices:
        return
    settings = provider.settings.devices
    now = provider.clock.now()
    sent = await provider.storage.devices.count_notices(
        request.subject, now - settings.notice_window_seconds
    )
    if sent >= settings.max_notices_per_window:
        await _event(provider, request, "notice_suppressed")
        return
    await provider.storage.devices.add_notice(request.subject, now)
    await provider.events.publish(user_topic(request.subject))
    pushed = [d for d in devices if d.push is not None]
    if pushed and provider.device_notifier is not None:
        await provider.device_notifier.push(pushed, push_message(client, request, consent))
    await _event(provider, request, "device_notified", devices=len(devices), push=len(pushed))


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
