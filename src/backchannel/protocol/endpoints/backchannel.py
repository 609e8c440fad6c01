"""The backchannel authentication endpoint (CIBA §7): POST /bc-authorize.

The steps run in the CIBA §7.2 order (item 66): authenticate the client, verify the
signed request if there is one, read the parameters (including the hint count), resolve
the hint to a user, check the binding message and user code, then store a pending
AuthRequest and acknowledge it (§7.3). Only the keyed hash of the ``auth_req_id`` is stored.
"""

from __future__ import annotations

from backchannel.authenticator import notify
from backchannel.authenticator.consent import new_consent
from backchannel.protocol import paths
from backchannel.protocol.ciba import lifecycle
from backchannel.protocol.ciba.binding import check_binding_message, check_user_code
from backchannel.protocol.ciba.delivery import seal_request_secret
from backchannel.protocol.ciba.hints import resolve_hint
from backchannel.protocol.ciba.request import (
    BackchannelParams,
    ensure_ciba_client,
    read_claims,
    read_form,
)
from backchannel.protocol.ciba.request_object import has_request_object, verify_request_object
from backchannel.protocol.client_auth import authenticate_client
from backchannel.protocol.errors import MethodNotAllowed
from backchannel.protocol.http import Form, HttpRequest, HttpResponse
from backchannel.protocol.model import JSON, AuthRequest, Client, DeliveryMode, User
from backchannel.protocol.provider import Provider

# 32 random bytes: 256 bits, base64url without padding (items 71, 72, P8).
AUTH_REQ_ID_BYTES = 32


async def handle(provider: Provider, request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        raise MethodNotAllowed("use POST")
    form = request.form()
    client = await authenticate_client(
        provider, request, form, provider.endpoint(paths.BACKCHANNEL)
    )
    ensure_ciba_client(client)
    params = await _read_params(provider, client, form)
    user = await resolve_hint(provider, client, params)
    # Anti push-bombing; the user's active devices, read once for the whole request.
    devices = await notify.admit(provider, client, user, params.binding_message)
    binding_message = check_binding_message(
        params.binding_message, provider.settings.ciba.binding_message_max_length
    )
    await check_user_code(provider, client, user, params.user_code)
    auth_req_id = provider.random.token(AUTH_REQ_ID_BYTES)
    auth_request = _new_auth_request(provider, auth_req_id, client, user, params, binding_message)
    consent = new_consent(provider, client, auth_request)
    notices = await notify.plan_notices(provider, client, auth_request, consent, devices)
    await lifecycle.start(
        provider,
        auth_request,
        notices.deliveries,  # Web Push, in the same transaction (outbox)
        consent=consent,  # what the devices show, in the same transaction too
        client_id=client.client_id,
        hint_kind=params.hint_kind,
    )
    await notify.announce(provider, auth_request, notices)
    return HttpResponse.json(_acknowledgement(auth_req_id, auth_request), no_store=True)


async def _read_params(provider: Provider, client: Client, form: Form) -> BackchannelParams:
    if has_request_object(form):
        claims = await verify_request_object(provider, client, form)
        return read_claims(claims, client, provider.settings.ciba)
    return read_form(form, client, provider.settings.ciba)


def _new_auth_request(
    provider: Provider,
    auth_req_id: str,
    client: Client,
    user: User,
    params: BackchannelParams,
    binding_message: str | None,
) -> AuthRequest:
    ciba = provider.settings.ciba
    now = provider.clock.now()
    expires_in = min(params.requested_expiry or ciba.default_expires_in, ciba.max_expires_in)
    id_hash = provider.hasher.fast(auth_req_id)
    return AuthRequest(
        id_hash=id_hash,
        client_id=client.client_id,
        subject=user.subject,
        scope=params.scope,
        delivery_mode=client.delivery_mode,
        created_at=now,
        expires_at=now + expires_in,
        interval=ciba.interval,
        acr_values=params.acr_values,
        binding_message=binding_message,
        # Never stored in plaintext: sealed, with the auth_req_id, for the notification.
        delivery_secret=seal_request_secret(
            provider, id_hash, auth_req_id, params.client_notification_token
        ),
        authorization_details=params.authorization_details,
        requested_expiry=params.requested_expiry,
    )


def _acknowledgement(auth_req_id: str, auth_request: AuthRequest) -> JSON:
    body: JSON = {
        "auth_req_id": auth_req_id,
        "expires_in": round(auth_request.expires_at - auth_request.created_at),
    }
    if auth_request.delivery_mode in (DeliveryMode.POLL, DeliveryMode.PING):
        body["interval"] = auth_request.interval
    return body
