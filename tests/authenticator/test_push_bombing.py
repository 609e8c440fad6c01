"""Anti push-bombing (issue item 6): pending cap, notice window, report → pause."""

from __future__ import annotations

import pytest

from backchannel.authenticator.notify import admit
from backchannel.protocol.errors import AccessDenied
from tests.authenticator.support import world

pytestmark = pytest.mark.anyio


async def test_item_86_pending_cap_per_user_refuses_with_access_denied() -> None:
    w = await world(devices={"max_pending_per_user": 2})
    await w.device()
    assert (await w.bc_authorize()).status_code == 200
    assert (await w.bc_authorize()).status_code == 200
    third = await w.bc_authorize()
    assert third.status_code == 403 and third.json()["error"] == "access_denied"
    w.clock.advance(121)  # the first two expire: room again
    assert (await w.bc_authorize()).status_code == 200


async def test_notices_beyond_the_window_limit_are_suppressed_but_accepted() -> None:
    w = await world(devices={"max_pending_per_user": 10, "max_notices_per_window": 2})
    device = await w.device()
    for _ in range(3):
        assert (await w.bc_authorize()).status_code == 200
    requests = sorted(await device.inbox(), key=lambda c: c.request_id)
    assert len(requests) == 3
    kinds = []
    for consent in requests:
        timeline = await w.provider.storage.requests.timeline(consent.request_id)
        kinds.append([event.kind for event in timeline][-1])
    assert sorted(kinds) == ["device_notified", "device_notified", "notice_suppressed"]
    w.clock.advance(901)
    assert (await w.bc_authorize()).status_code == 200
    assert await w.provider.storage.devices.count_notices(w.user.subject, w.clock.now() - 1) == 1


async def test_report_denies_records_and_pauses_the_client_for_that_user() -> None:
    w = await world()
    device = await w.device()
    assert (await w.bc_authorize()).status_code == 200
    [consent] = await device.inbox()
    assert await device.report(consent) == "reported"
    [report] = await w.provider.storage.devices.list_reports()
    assert report.client_id == w.client.client_id and report.device_id == device.device_id
    paused = await w.bc_authorize()
    assert paused.status_code == 403 and paused.json()["error"] == "access_denied"
    w.clock.advance(901)
    assert (await w.bc_authorize()).status_code == 200


async def test_without_a_device_the_pending_cap_does_not_apply() -> None:
    w = await world(devices={"max_pending_per_user": 1})
    assert (await w.bc_authorize()).status_code == 200
    assert (await w.bc_authorize()).status_code == 200
    await w.device()
    with pytest.raises(AccessDenied):
        await admit(w.provider, w.client, w.user, None)
