"""The one place a user's approve/deny lands, whatever the channel it came through
(the authenticator app and device SDK, the operator CLI, the test hook).

Which ``acr`` an approval carries (items 37, 129) — the id_token says what happened:

1. the ``acr`` the channel reports it achieved (the authenticator maps device key and
   WebAuthn user verification to levels, see ``authenticator/assurance.py``; an operator
   may state one with ``requests approve --acr``);
2. on the automated test hook only (``channel="test"``, conformance and load tests), the
   first of the request's ``acr_values``, since that channel stands in for a real device;
3. otherwise none: a requested level nobody achieved is never claimed.

``amr`` is whatever the channel reports (empty unless given).
"""

from __future__ import annotations

from typing import Any

from backchannel.protocol.ciba import delivery, lifecycle
from backchannel.protocol.errors import InvalidRequest, NotFound
from backchannel.protocol.events import request_topic, user_topic
from backchannel.protocol.model import AuthRequest
from backchannel.protocol.provider import Provider

_HASH_SCHEME = "hmac:"
TEST_CHANNEL = "test"


async def decide(
    provider: Provider,
    request: AuthRequest,
    *,
    approve: bool,
    channel: str,
    acr: str | None = None,
    amr: tuple[str, ...] = (),
    **detail: Any,
) -> AuthRequest:
    """pending -> approved | denied, then held long polls are woken (in every process, with
    a cross-process event bus). Raises ``lifecycle.NotPending`` (409) otherwise.

    Ping and push notifications are enqueued with the decision (``ciba.delivery``)."""
    await delivery.expire_push_if_overdue(provider, request)
    deliveries = await delivery.decision_deliveries(provider, request, approved=approve)
    if approve:
        decided = await lifecycle.approve(
            provider,
            request,
            acr=choose_acr(request, acr, channel),
            amr=amr,
            deliveries=deliveries,
            channel=channel,
            **detail,
        )
        await delivery.after_approval(provider, decided)
    else:
        decided = await lifecycle.deny(
            provider, request, deliveries=deliveries, channel=channel, **detail
        )
    await provider.events.publish(request_topic(decided.id_hash))
    await provider.events.publish(user_topic(decided.subject))
    return decided


def choose_acr(request: AuthRequest, achieved: str | None, channel: str) -> str | None:
    if achieved:
        return achieved
    if channel == TEST_CHANNEL and request.acr_values:
        return request.acr_values[0]
    return None


async def find_by_auth_req_id(provider: Provider, auth_req_id: str) -> AuthRequest | None:
    return await provider.storage.requests.get_request(provider.hasher.fast(auth_req_id))


async def find_by_ref(provider: Provider, ref: str) -> AuthRequest:
    """The one request whose reference starts with ``ref`` (with or without the hash
    scheme prefix). Raises ``NotFound`` or, when ambiguous, ``InvalidRequest``."""
    ref = ref.strip()
    if not ref:
        raise InvalidRequest("give a request reference")
    prefix = ref if ref.startswith(_HASH_SCHEME) else _HASH_SCHEME + ref
    matches = await provider.storage.requests.find_by_ref(prefix)
    if not matches:
        raise NotFound(f"no request matches {ref!r}")
    if len(matches) > 1:
        raise InvalidRequest(f"{ref!r} matches {len(matches)} requests; give more characters")
    return matches[0]
