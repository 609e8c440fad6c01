"""Demo data for ``backchannel serve --seed-demo`` (``make run``): one user, one client.

The demo secret is a fixed, publicly known value, so it is printed; it exists only for
local trials and is created only into an empty database.
"""

from __future__ import annotations

from backchannel.protocol.model import DeliveryMode
from backchannel.protocol.provider import Provider
from backchannel.protocol.registration import client_from_metadata, hash_client_secret
from backchannel.protocol.users import new_user

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-password"
DEMO_CLIENT_ID = "demo-client"
DEMO_CLIENT_SECRET = "demo-secret"
DEMO_SCOPE = "openid profile email phone"


async def seed_demo(provider: Provider) -> list[str]:
    """Create the demo user and client when the database has neither clients nor users.
    Returns lines describing what was created ([] when nothing was)."""
    storage = provider.storage
    if await storage.clients.list_clients() or await storage.users.list_users():
        return []
    now = provider.clock.now()
    user = new_user(
        provider.random,
        provider.hasher,
        now,
        username=DEMO_USERNAME,
        email="demo@example.com",
        phone="+15555550100",
        display_name="Demo User",
        password=DEMO_PASSWORD,
    )
    client = client_from_metadata(
        {
            "client_id": DEMO_CLIENT_ID,
            "client_name": "Demo Client",
            "token_endpoint_auth_method": "client_secret_basic",
            "backchannel_token_delivery_mode": DeliveryMode.POLL.value,
            "scope": DEMO_SCOPE,
        },
        dev_mode=provider.settings.dev_mode,
        now=now,
    )
    client.secret_hash = hash_client_secret(provider.hasher, DEMO_CLIENT_SECRET, generated=False)
    await storage.users.add_user(user)
    await storage.clients.add_client(client)
    return [
        f"demo user: username {DEMO_USERNAME}, login_hint demo@example.com or +15555550100, "
        f"subject {user.subject}, password {DEMO_PASSWORD}",
        f"demo client: client_id {DEMO_CLIENT_ID}, client_secret {DEMO_CLIENT_SECRET} "
        f"(client_secret_basic, poll mode, scope {DEMO_SCOPE!r})",
    ]
