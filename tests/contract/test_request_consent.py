"""AuthRequestStore contract: a new request's consent is stored in the request's own
transaction (issue 7), so a request that cannot be stored leaves no consent behind."""

from __future__ import annotations

import pytest

from backchannel.protocol.model import AuthRequest, Consent, OutboxEntry
from backchannel.protocol.ports import DuplicateError, Storage
from tests.contract import builders

pytestmark = pytest.mark.anyio
T0 = builders.T0


def consent_of(request: AuthRequest, content: str = '{"client":"Call centre"}') -> Consent:
    return Consent(
        id_hash=request.id_hash,
        subject=request.subject,
        content=content,
        content_mac="hmac:mac",
        created_at=request.created_at,
        binding_choices=("AB12", "CD34", "EF56"),
    )


def webpush(request: AuthRequest, entry_id: str = "ob-1") -> OutboxEntry:
    return OutboxEntry(
        id=entry_id,
        kind="webpush",
        url="https://push.example.test/s/1",
        payload="sealed",
        created_at=T0,
        next_attempt_at=T0,
        deliver_until=request.expires_at,
        id_hash=request.id_hash,
    )


async def test_create_request_stores_its_consent(storage: Storage) -> None:
    request = builders.request()
    consent = consent_of(request)
    await storage.requests.create_request(request, builders.event(), consent=consent)
    assert await storage.requests.get_request(request.id_hash) == request
    assert await storage.devices.get_consent(request.id_hash) == consent
    assert await storage.devices.list_consents(request.subject, T0 - 1) == [consent]


async def test_create_request_without_consent_stores_none(storage: Storage) -> None:
    request = builders.request()
    await storage.requests.create_request(request, builders.event())
    assert await storage.devices.get_consent(request.id_hash) is None


async def test_a_duplicate_request_id_leaves_no_consent(storage: Storage) -> None:
    request = builders.request()
    await storage.requests.create_request(request, builders.event())
    with pytest.raises(DuplicateError):
        await storage.requests.create_request(
            request, builders.event(), consent=consent_of(request)
        )
    assert await storage.devices.get_consent(request.id_hash) is None
    assert await storage.requests.timeline(request.id_hash) == [builders.event()]


async def test_a_duplicate_request_keeps_the_first_consent(storage: Storage) -> None:
    request = builders.request()
    first = consent_of(request)
    await storage.requests.create_request(request, builders.event(), consent=first)
    with pytest.raises(DuplicateError):
        await storage.requests.create_request(
            request, builders.event(), consent=consent_of(request, "{}")
        )
    assert await storage.devices.get_consent(request.id_hash) == first


async def test_an_existing_consent_refuses_the_request_and_writes_nothing(
    storage: Storage,
) -> None:
    request = builders.request()
    existing = consent_of(request, "{}")
    await storage.devices.add_consent(existing)
    notice = webpush(request)
    with pytest.raises(DuplicateError):
        await storage.requests.create_request(
            request, builders.event(), [notice], consent=consent_of(request)
        )
    assert await storage.requests.get_request(request.id_hash) is None
    assert await storage.requests.timeline(request.id_hash) == []
    assert await storage.outbox.get_entry(notice.id) is None
    assert await storage.devices.get_consent(request.id_hash) == existing


async def test_a_duplicate_outbox_entry_leaves_no_request_and_no_consent(
    storage: Storage,
) -> None:
    earlier = builders.request()
    await storage.requests.create_request(earlier, builders.event(), [webpush(earlier)])
    request = builders.request()
    with pytest.raises(DuplicateError):
        await storage.requests.create_request(
            request, builders.event(), [webpush(request)], consent=consent_of(request)
        )
    assert await storage.requests.get_request(request.id_hash) is None
    assert await storage.devices.get_consent(request.id_hash) is None
