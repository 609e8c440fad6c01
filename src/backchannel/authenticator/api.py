"""The device API (docs/authenticator-api.md), framework-free: each handler takes the
provider and an ``HttpRequest`` (plus path values) and returns an ``HttpResponse``.
``web/authenticator.py`` mounts them under ``/authenticator/api``."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson

from backchannel.authenticator import consent, decision, enrol, webauthn_uv
from backchannel.protocol.errors import InvalidRequest, InvalidToken, NotFound
from backchannel.protocol.http import NO_STORE, HttpRequest, HttpResponse
from backchannel.protocol.model import JSON, Client, Device, PushSubscription, RequestState
from backchannel.protocol.provider import Provider

LAST_SEEN_RESOLUTION = 60.0


def json_body(request: HttpRequest) -> JSON:
    content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise InvalidRequest("the body must be application/json")
    try:
        value = orjson.loads(request.body)
    except orjson.JSONDecodeError:
        raise InvalidRequest("the body is not JSON") from None
    if not isinstance(value, dict):
        raise InvalidRequest("the body must be a JSON object")
    return value


async def authenticate(provider: Provider, request: HttpRequest) -> Device:
    """The active device whose bearer token came with the request."""
    token = request.bearer_token()
    if token is None:
        raise InvalidToken("send the device token as a Bearer token")
    device = await provider.storage.devices.find_device_by_token(provider.hasher.fast(token))
    if device is None:
        raise InvalidToken("unknown device token")
    if not device.active:
        raise InvalidToken("this device was revoked")
    now = provider.clock.now()
    if device.last_seen_at is None or now - device.last_seen_at > LAST_SEEN_RESOLUTION:
        device = replace(device, last_seen_at=now)
        await provider.storage.devices.touch_device(device.device_id, now)
    return device


async def enrol_device(provider: Provider, request: HttpRequest) -> HttpResponse:
    device, token, user = await enrol.enrol(provider, json_body(request))
    return HttpResponse.json(enrol.enrolment_response(device, token, user), 201, no_store=True)


async def inbox(provider: Provider, request: HttpRequest) -> HttpResponse:
    device = await authenticate(provider, request)
    return HttpResponse.json({"requests": await pending_consents(provider, device)}, no_store=True)


async def pending_consents(provider: Provider, device: Device) -> list[JSON]:
    """The user's pending, unexpired requests, newest first, as Consent objects. A consent
    whose stored content was tampered with is left out."""
    now = provider.clock.now()
    since = now - provider.settings.ciba.max_expires_in
    clients: dict[str, Client | None] = {}
    shown: list[JSON] = []
    for stored in await provider.storage.devices.list_consents(device.subject, since):
        request = await provider.storage.requests.get_request(stored.id_hash)
        if request is None or request.state is not RequestState.PENDING:
            continue
        if request.expires_at <= now:
            continue
        if request.client_id not in clients:
            clients[request.client_id] = await provider.storage.clients.get_client(
                request.client_id
            )
        client = clients[request.client_id]
        try:
            verified = consent.verified(provider, stored)
        except consent.ConsentTampered:
            continue
        if client is not None:
            shown.append(consent.shown(verified, client, request).body())
    return shown


async def pending_ids(provider: Provider, device: Device) -> set[str]:
    return {entry["request_id"] for entry in await pending_consents(provider, device)}


async def decide(provider: Provider, request: HttpRequest, request_id: str) -> HttpResponse:
    device = await authenticate(provider, request)
    result = await decision.decide(provider, device, request_id, json_body(request))
    return HttpResponse.json(result, no_store=True)


async def push_key(provider: Provider, request: HttpRequest) -> HttpResponse:
    from backchannel.authenticator.webpush import vapid_public_key

    return HttpResponse.json({"public_key": await vapid_public_key(provider)})


async def push_subscription(provider: Provider, request: HttpRequest) -> HttpResponse:
    device = await authenticate(provider, request)
    subscription = _subscription(json_body(request))
    await provider.storage.devices.update_device(replace(device, push=subscription))
    return HttpResponse(status=204, headers=dict(NO_STORE), media_type="application/json")


async def webauthn_register_options(provider: Provider, request: HttpRequest) -> HttpResponse:
    device = await authenticate(provider, request)
    user = await provider.storage.users.get_user(device.subject)
    if user is None:
        raise NotFound("the device's user no longer exists")
    return HttpResponse.json(
        webauthn_uv.registration_options(provider, device, user), no_store=True
    )


async def webauthn_register(provider: Provider, request: HttpRequest) -> HttpResponse:
    device = await authenticate(provider, request)
    updated = await webauthn_uv.register(provider, device, json_body(request))
    await provider.storage.devices.update_device(updated)
    return HttpResponse(status=204, headers=dict(NO_STORE), media_type="application/json")


async def webauthn_assertion_options(
    provider: Provider, request: HttpRequest, request_id: str
) -> HttpResponse:
    device = await authenticate(provider, request)
    stored = await provider.storage.devices.get_consent(request_id)
    if stored is None or stored.subject != device.subject:
        raise NotFound("no such request for this device's user")
    options = webauthn_uv.assertion_options(
        provider, device, request_id, consent.content_hash(stored.content)
    )
    return HttpResponse.json(options, no_store=True)


def _subscription(body: JSON) -> PushSubscription:
    endpoint = body.get("endpoint")
    keys: Any = body.get("keys")
    if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")):
        raise InvalidRequest("endpoint must be the push service URL")
    if not isinstance(keys, dict):
        raise InvalidRequest("keys must hold p256dh and auth")
    p256dh, auth = keys.get("p256dh"), keys.get("auth")
    if not isinstance(p256dh, str) or not isinstance(auth, str):
        raise InvalidRequest("keys must hold p256dh and auth")
    return PushSubscription(endpoint=endpoint, p256dh=p256dh, auth=auth)
