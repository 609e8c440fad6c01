"""`seed_demo`: the demo user and client of `make run`, created only into an empty store."""

from __future__ import annotations

import pytest

from backchannel.protocol.model import AuthMethod, Client, DeliveryMode
from backchannel.protocol.users import find_by_login_hint, new_user, verify_password
from backchannel.seed import seed_demo
from tests.support.provider import make_provider


@pytest.mark.anyio
async def test_seed_creates_demo_user_and_client_into_an_empty_store() -> None:
    provider = await make_provider()
    lines = await seed_demo(provider)
    assert len(lines) == 2
    assert any("demo-secret" in line and "demo-client" in line for line in lines)
    user = await find_by_login_hint(provider.storage.users, "demo@example.com")
    assert user is not None
    assert user.username == "demo"
    assert user.phone == "+15555550100"
    assert user.display_name == "Demo User"
    assert user.user_code_hash is None
    assert verify_password(user, provider.hasher, "demo-password")
    assert user.subject in " ".join(lines)
    client = await provider.storage.clients.get_client("demo-client")
    assert client is not None
    assert client.name == "Demo Client"
    assert client.token_endpoint_auth_method is AuthMethod.CLIENT_SECRET_BASIC
    assert client.delivery_mode is DeliveryMode.POLL
    assert client.scopes == ("openid", "profile", "email", "phone")
    assert client.secret_hash is not None and client.secret_hash.startswith("argon2:")
    assert provider.hasher.verify("demo-secret", client.secret_hash)


@pytest.mark.anyio
async def test_seed_twice_creates_nothing_the_second_time() -> None:
    provider = await make_provider()
    assert await seed_demo(provider)
    assert await seed_demo(provider) == []
    assert len(await provider.storage.users.list_users()) == 1
    assert len(await provider.storage.clients.list_clients()) == 1


@pytest.mark.anyio
async def test_seed_leaves_a_store_with_a_client_alone() -> None:
    provider = await make_provider()
    await provider.storage.clients.add_client(Client(client_id="c_real", name="Real"))
    assert await seed_demo(provider) == []
    assert await provider.storage.users.list_users() == []


@pytest.mark.anyio
async def test_seed_leaves_a_store_with_a_user_alone() -> None:
    provider = await make_provider()
    user = new_user(provider.random, provider.hasher, provider.clock.now(), username="real")
    await provider.storage.users.add_user(user)
    assert await seed_demo(provider) == []
    assert await provider.storage.clients.list_clients() == []
