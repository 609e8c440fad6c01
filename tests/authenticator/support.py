"""A provider with a user, a client and the ASGI app, and enrolled SDK devices."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import httpx

from backchannel.authenticator import enrol
from backchannel.device import DeviceClient
from backchannel.protocol.model import Client, User
from backchannel.protocol.provider import Provider
from backchannel.protocol.users import set_password
from tests.support.ciba import add_client, add_user, basic
from tests.support.clock import FakeClock
from tests.support.http import asgi_client
from tests.support.provider import ISSUER, make_provider

PASSWORD = "correct horse battery staple"


@dataclass
class World:
    provider: Provider
    clock: FakeClock
    client: Client
    user: User
    http: httpx.AsyncClient

    async def bc_authorize(self, **fields: str) -> httpx.Response:
        body = {"scope": "openid profile", "login_hint": self.user.username, **fields}
        return await self.http.post(
            "/bc-authorize", data=body, headers={"authorization": basic(self.client.client_id)}
        )

    async def device(self, name: str = "Test device") -> DeviceClient:
        issued = await enrol.issue_code(self.provider, self.user)
        return await DeviceClient.enrol_with_code(
            ISSUER, issued.code, name, http=self.http, clock=self.clock.now
        )

    async def set_client(self, **changes: Any) -> None:
        self.client = replace(self.client, **changes)
        await self.provider.storage.clients.update_client(self.client)


async def world(**overrides: Any) -> World:
    clock = FakeClock()
    provider = await make_provider(clock=clock, **overrides)
    client = await add_client(provider)
    user = await add_user(provider)
    user = set_password(user, provider.hasher, PASSWORD, clock.now())
    await provider.storage.users.update_user(user)
    return World(provider, clock, client, user, asgi_client(provider))
