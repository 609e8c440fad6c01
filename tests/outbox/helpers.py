"""Ping/push clients, real bc-authorize calls, and a worker whose sleeps are instant."""

from __future__ import annotations

from backchannel.outbound import OutboundClient
from backchannel.outbox.worker import DeliveryWorker
from backchannel.protocol import paths
from backchannel.protocol.ciba import outcome
from backchannel.protocol.endpoints import backchannel
from backchannel.protocol.http import HttpResponse
from backchannel.protocol.model import AuthRequest, Client, DeliveryMode
from backchannel.protocol.provider import Provider
from tests.support.ciba import SECRET, add_user, form_request

NOTIFICATION_TOKEN = "notification-token-8f2c1e"


async def no_sleep(_seconds: float) -> None:
    return None


async def notified_client(
    provider: Provider, mode: DeliveryMode, url: str, client_id: str = "rp-1"
) -> Client:
    client = Client(
        client_id=client_id,
        name=client_id,
        secret_hash=provider.hasher.fast(SECRET),
        delivery_mode=mode,
        notification_endpoint=url,
        scopes=("openid", "profile", "email"),
    )
    await provider.storage.clients.add_client(client)
    if await provider.storage.users.get_user("user-1") is None:
        await add_user(provider)
    return client


async def bc_authorize(
    provider: Provider, client_id: str = "rp-1", token: str | None = NOTIFICATION_TOKEN
) -> HttpResponse:
    fields = {"scope": "openid email", "login_hint": "user-1-name"}
    if token is not None:
        fields["client_notification_token"] = token
    request = form_request(paths.BACKCHANNEL, fields, client_id=client_id)
    return await backchannel.handle(provider, request)


async def started(provider: Provider, client_id: str = "rp-1") -> tuple[str, AuthRequest]:
    """A pending request made through the real endpoint: its auth_req_id and record."""
    answer = (await bc_authorize(provider, client_id)).body
    found = await outcome.find_by_auth_req_id(provider, answer["auth_req_id"])
    assert found is not None
    return answer["auth_req_id"], found


async def decided(provider: Provider, client_id: str = "rp-1", *, approve: bool = True) -> str:
    auth_req_id, request = await started(provider, client_id)
    await outcome.decide(provider, request, approve=approve, channel="test")
    return auth_req_id


def instant_worker(
    provider: Provider, owner: str = "test-worker", batch: int = 32
) -> DeliveryWorker:
    """Backoff jitter fixed at one half, so retry times are predictable."""
    return DeliveryWorker(
        provider,
        OutboundClient(provider.settings),
        owner=owner,
        sleep=no_sleep,
        jitter=lambda: 0.5,
        batch=batch,
    )
