"""Seeding CIBA state straight into storage, and calling protocol endpoints in-process."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from backchannel.protocol.ciba import lifecycle
from backchannel.protocol.errors import OAuthError
from backchannel.protocol.http import HttpRequest, HttpResponse
from backchannel.protocol.model import AuthRequest, Client, DeliveryMode, User
from backchannel.protocol.provider import Provider
from backchannel.protocol.secrets import RandomTokens

CIBA_GRANT = "urn:openid:params:grant-type:ciba"
SECRET = "client-secret-0123456789-abcdefghij"
Handler = Callable[[Provider, HttpRequest], Awaitable[HttpResponse]]


async def add_client(
    provider: Provider,
    client_id: str = "rp-1",
    *,
    mode: DeliveryMode = DeliveryMode.POLL,
    alg: str = "RS256",
    scopes: tuple[str, ...] = ("openid", "profile", "email"),
) -> Client:
    client = Client(
        client_id=client_id,
        name=client_id,
        secret_hash=provider.hasher.fast(SECRET),
        delivery_mode=mode,
        notification_endpoint="https://rp.example.test/cb" if mode != DeliveryMode.POLL else None,
        id_token_signed_response_alg=alg,
        scopes=scopes,
    )
    await provider.storage.clients.add_client(client)
    return client


async def add_user(provider: Provider, subject: str = "user-1") -> User:
    user = User(
        subject=subject,
        username=f"{subject}-name",
        email=f"{subject}@example.test",
        display_name="Ada Lovelace",
        updated_at=provider.clock.now(),
    )
    await provider.storage.users.add_user(user)
    return user


async def pending_request(
    provider: Provider,
    client: Client,
    subject: str = "user-1",
    *,
    scope: tuple[str, ...] = ("openid", "profile", "email"),
    expires_in: int = 120,
    interval: int = 5,
    acr_values: tuple[str, ...] = (),
    binding_message: str | None = None,
) -> tuple[str, AuthRequest]:
    """A stored pending request and its auth_req_id (only the hash is stored)."""
    auth_req_id = provider.random.token(20)
    now = provider.clock.now()
    request = AuthRequest(
        id_hash=provider.hasher.fast(auth_req_id),
        client_id=client.client_id,
        subject=subject,
        scope=scope,
        delivery_mode=client.delivery_mode,
        created_at=now,
        expires_at=now + expires_in,
        interval=interval,
        acr_values=acr_values,
        binding_message=binding_message,
    )
    await lifecycle.start(provider, request)
    return auth_req_id, request


async def approved_request(
    provider: Provider,
    client: Client,
    subject: str = "user-1",
    *,
    scope: tuple[str, ...] = ("openid", "profile", "email"),
) -> tuple[str, AuthRequest]:
    auth_req_id, request = await pending_request(provider, client, subject, scope=scope)
    approved = await lifecycle.approve(provider, request, acr="urn:acr:1", amr=("pwd",))
    return auth_req_id, approved


def basic(client_id: str, secret: str = SECRET) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def form_request(
    path: str,
    fields: dict[str, str] | list[tuple[str, str]],
    *,
    client_id: str | None = "rp-1",
    method: str = "POST",
    headers: dict[str, str] | None = None,
) -> HttpRequest:
    all_headers = {"content-type": "application/x-www-form-urlencoded"}
    if client_id is not None:
        all_headers["authorization"] = basic(client_id)
    all_headers.update(headers or {})
    return HttpRequest(
        method=method,
        url="https://op.example.test" + path,
        headers=all_headers,
        body=urlencode(fields).encode(),
    )


def token_request(
    fields: dict[str, str] | list[tuple[str, str]], client_id: str | None = "rp-1"
) -> HttpRequest:
    return form_request("/token", fields, client_id=client_id)


def ciba_grant(auth_req_id: str, client_id: str = "rp-1") -> HttpRequest:
    return token_request({"grant_type": CIBA_GRANT, "auth_req_id": auth_req_id}, client_id)


async def outcome_of(
    handler: Handler, provider: Provider, request: HttpRequest
) -> HttpResponse | OAuthError:
    """The response, or the OAuth error the endpoint raised (what web/ would render)."""
    try:
        return await handler(provider, request)
    except OAuthError as error:
        return error


class RecordingTokens:
    """The real token source, remembering what it handed out (to find a token's jti)."""

    def __init__(self) -> None:
        self.issued: list[str] = []
        self._source = RandomTokens()

    def token(self, nbytes: int = 32) -> str:
        value = self._source.token(nbytes)
        self.issued.append(value)
        return value
