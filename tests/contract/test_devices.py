"""The DeviceStore contract on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from backchannel.protocol.model import (
    Consent,
    Device,
    EnrolmentCode,
    Pause,
    PushSubscription,
    Report,
    WebAuthnCredential,
)
from backchannel.protocol.ports import DuplicateError, Storage

pytestmark = pytest.mark.anyio

JWK = {"kty": "EC", "crv": "P-256", "x": "xx", "y": "yy"}


def _device(device_id: str = "d_1", subject: str = "u_1", token: str = "hmac:t1") -> Device:
    return Device(
        device_id=device_id,
        subject=subject,
        name="Pixel",
        public_jwk=JWK,
        token_hash=token,
        created_at=100.0,
    )


async def test_device_round_trip_and_lookup_by_token(storage: Storage) -> None:
    await storage.devices.add_device(_device())
    assert await storage.devices.get_device("d_1") == _device()
    found = await storage.devices.find_device_by_token("hmac:t1")
    assert found is not None and found.device_id == "d_1"
    assert await storage.devices.find_device_by_token("hmac:other") is None
    with pytest.raises(DuplicateError):
        await storage.devices.add_device(_device())
    with pytest.raises(DuplicateError):
        await storage.devices.add_device(_device("d_2"))


async def test_update_keeps_credentials_and_push(storage: Storage) -> None:
    await storage.devices.add_device(_device())
    device = _device()
    device.last_seen_at = 150.0
    device.credentials = (WebAuthnCredential("cid", "pk", 3, ("internal",)),)
    device.push = PushSubscription("https://push.example/1", "p256", "auth")
    await storage.devices.update_device(device)
    assert await storage.devices.get_device("d_1") == device


async def test_touch_stores_only_when_the_device_was_last_seen(storage: Storage) -> None:
    await storage.devices.add_device(_device())
    await storage.devices.touch_device("d_1", 150.0)
    await storage.devices.touch_device("d_missing", 150.0)  # a heartbeat: nothing to do
    seen = await storage.devices.get_device("d_1")
    assert seen is not None and seen.last_seen_at == 150.0
    seen.last_seen_at = None
    assert seen == _device()  # everything else as it was
    assert await storage.devices.get_device("d_missing") is None


async def test_revoke_once_and_list_by_subject(storage: Storage) -> None:
    await storage.devices.add_device(_device())
    await storage.devices.add_device(_device("d_2", "u_2", "hmac:t2"))
    assert await storage.devices.revoke_device("d_1", 200.0) is True
    assert await storage.devices.revoke_device("d_1", 201.0) is False
    assert await storage.devices.revoke_device("d_missing", 201.0) is False
    revoked = await storage.devices.get_device("d_1")
    assert revoked is not None and revoked.revoked_at == 200.0 and not revoked.active
    assert [d.device_id for d in await storage.devices.list_devices("u_2")] == ["d_2"]
    assert len(await storage.devices.list_devices()) == 2


async def test_enrolment_code_is_used_once_and_not_after_expiry(storage: Storage) -> None:
    await storage.devices.add_enrolment_code(EnrolmentCode("hmac:c1", "u_1", 0.0, 600.0))
    await storage.devices.add_enrolment_code(EnrolmentCode("hmac:c2", "u_1", 0.0, 600.0))
    used = await storage.devices.use_enrolment_code("hmac:c1", 10.0)
    assert used is not None and used.subject == "u_1" and used.used_at == 10.0
    assert await storage.devices.use_enrolment_code("hmac:c1", 11.0) is None
    assert await storage.devices.use_enrolment_code("hmac:c2", 600.0) is None
    assert await storage.devices.use_enrolment_code("hmac:unknown", 1.0) is None


async def test_consent_round_trip(storage: Storage) -> None:
    consent = Consent("hmac:r1", "u_1", '{"a":"é 😀"}', "hmac:m", 5.0, ("AB12", "CD34", "EF56"))
    await storage.devices.add_consent(consent)
    assert await storage.devices.get_consent("hmac:r1") == consent
    plain = Consent("hmac:r2", "u_1", "{}", "hmac:m2", 5.0)
    await storage.devices.add_consent(plain)
    assert await storage.devices.get_consent("hmac:r2") == plain
    assert await storage.devices.get_consent("hmac:none") is None
    later = Consent("hmac:r3", "u_1", "{}", "hmac:m3", 9.0)
    await storage.devices.add_consent(later)
    await storage.devices.add_consent(Consent("hmac:r4", "u_2", "{}", "hmac:m4", 9.0))
    assert [c.id_hash for c in await storage.devices.list_consents("u_1", 4.0)] == [
        "hmac:r3",
        "hmac:r2",
        "hmac:r1",
    ]
    assert [c.id_hash for c in await storage.devices.list_consents("u_1", 5.0)] == ["hmac:r3"]


async def test_notices_are_counted_per_user_and_window(storage: Storage) -> None:
    for at in (10.0, 20.0, 30.0):
        await storage.devices.add_notice("u_1", at)
    await storage.devices.add_notice("u_2", 30.0)
    assert await storage.devices.count_notices("u_1", 20.0) == 2
    assert await storage.devices.count_notices("u_1", 0.0) == 3
    assert await storage.devices.count_notices("u_3", 0.0) == 0


async def test_reports_newest_first_and_pauses_only_extend(storage: Storage) -> None:
    await storage.devices.add_report(Report("c_1", "u_1", "hmac:a", "d_1", 10.0))
    await storage.devices.add_report(Report("c_2", "u_1", "hmac:b", "d_1", 20.0))
    assert [r.id_hash for r in await storage.devices.list_reports()] == ["hmac:b", "hmac:a"]
    await storage.devices.set_pause(Pause("c_1", "u_1", 900.0))
    await storage.devices.set_pause(Pause("c_1", "u_1", 500.0))
    assert await storage.devices.get_pause("c_1", "u_1") == Pause("c_1", "u_1", 900.0)
    await storage.devices.set_pause(Pause("c_1", "u_1", 1200.0))
    assert await storage.devices.get_pause("c_1", "u_1") == Pause("c_1", "u_1", 1200.0)
    assert await storage.devices.get_pause("c_1", "u_2") is None


async def test_pause_and_devices_answers_like_get_pause_and_list_devices(
    storage: Storage,
) -> None:
    """What every bc-authorize reads for its anti push-bombing checks (checklist item 6 of
    the device issue): the client's pause for this user and every device of the user,
    revoked ones included, oldest first; nothing of other clients or users."""
    devices = storage.devices
    assert await devices.pause_and_devices("c_1", "u_1") == (None, [])
    later = _device("d_2", token="hmac:t2")
    later.created_at = 300.0
    await devices.add_device(later)
    await devices.add_device(_device())
    await devices.add_device(_device("d_3", "u_2", "hmac:t3"))
    assert await devices.revoke_device("d_2", 400.0) is True
    await devices.set_pause(Pause("c_2", "u_1", 900.0))
    await devices.set_pause(Pause("c_1", "u_2", 900.0))
    pause, found = await devices.pause_and_devices("c_1", "u_1")
    assert pause is None
    assert [d.device_id for d in found] == ["d_1", "d_2"]
    assert found == await devices.list_devices("u_1")
    assert found[1].revoked_at == 400.0
    await devices.set_pause(Pause("c_1", "u_1", 1200.0))
    assert await devices.pause_and_devices("c_1", "u_1") == (
        Pause("c_1", "u_1", 1200.0),
        await devices.list_devices("u_1"),
    )
    assert await devices.pause_and_devices("c_1", "u_3") == (None, [])


async def test_server_secret_is_stored_once(storage: Storage) -> None:
    assert await storage.devices.get_secret("vapid") is None
    assert await storage.devices.add_secret("vapid", "first") is True
    assert await storage.devices.add_secret("vapid", "second") is False
    assert await storage.devices.get_secret("vapid") == "first"
