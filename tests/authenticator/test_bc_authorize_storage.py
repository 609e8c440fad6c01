"""What POST /bc-authorize reads and writes for a user with devices (issue 7): the consent
goes in with the request, and the user's devices are read once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from backchannel.authenticator.consent import verified
from backchannel.protocol.ciba import lifecycle
from backchannel.protocol.endpoints import backchannel
from backchannel.protocol.model import AuthRequest, Device
from backchannel.protocol.ports import DuplicateError
from tests.authenticator.support import World, world
from tests.support.ciba import form_request

pytestmark = pytest.mark.anyio
FIXED_AUTH_REQ_ID = "the-same-auth-req-id-every-time-0123456789a"


class SameToken:
    """A token source that always hands out the same value (to force an id collision)."""

    def token(self, nbytes: int = 32) -> str:
        return FIXED_AUTH_REQ_ID


def count_device_lists(w: World, monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """Records the subject of every ``list_devices`` call (the real store still answers)."""
    calls: list[str | None] = []
    real: Callable[[str | None], Awaitable[list[Device]]] = w.provider.storage.devices.list_devices

    async def listing(subject: str | None = None) -> list[Device]:
        calls.append(subject)
        return await real(subject)

    monkeypatch.setattr(w.provider.storage.devices, "list_devices", listing)
    return calls


async def test_bc_authorize_stores_the_consent_with_the_request() -> None:
    w = await world()
    device = await w.device()
    assert (await w.bc_authorize(binding_message="W4SCT")).status_code == 200
    [shown] = await device.inbox()
    stored = await w.provider.storage.devices.get_consent(shown.request_id)
    assert stored is not None and verified(w.provider, stored) == stored
    assert await w.provider.storage.requests.get_request(shown.request_id) is not None


@pytest.mark.parametrize("with_device", [False, True])
async def test_bc_authorize_lists_the_users_devices_once(
    with_device: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = await world()
    if with_device:
        await w.device()
    calls = count_device_lists(w, monkeypatch)
    assert (await w.bc_authorize()).status_code == 200
    assert calls == [w.user.subject]


async def test_a_request_that_cannot_be_stored_leaves_no_consent() -> None:
    w = await world()
    await w.device()
    w.provider.random = SameToken()
    id_hash = w.provider.hasher.fast(FIXED_AUTH_REQ_ID)
    now = w.clock.now()
    taken = AuthRequest(
        id_hash=id_hash,
        client_id=w.client.client_id,
        subject=w.user.subject,
        scope=("openid",),
        delivery_mode=w.client.delivery_mode,
        created_at=now,
        expires_at=now + 120,
        interval=5,
    )
    await lifecycle.start(w.provider, taken)
    form = {"scope": "openid", "login_hint": w.user.username or ""}
    with pytest.raises(DuplicateError):
        await backchannel.handle(
            w.provider, form_request("/bc-authorize", form, client_id=w.client.client_id)
        )
    assert await w.provider.storage.devices.get_consent(id_hash) is None
    assert [e.kind for e in await w.provider.storage.requests.timeline(id_hash)] == ["created"]
