"""ClientStore contract."""

from __future__ import annotations

import pytest

from backchannel.protocol.model import DeliveryMode
from backchannel.protocol.ports import DuplicateError, MissingError, Storage
from tests.contract import builders

pytestmark = pytest.mark.anyio


async def test_added_client_reads_back_equal(storage: Storage) -> None:
    client = builders.client()
    await storage.clients.add_client(client)
    assert await storage.clients.get_client("client-1") == client


async def test_unknown_client_is_none(storage: Storage) -> None:
    assert await storage.clients.get_client("nobody") is None


async def test_duplicate_client_id_is_refused(storage: Storage) -> None:
    await storage.clients.add_client(builders.client())
    with pytest.raises(DuplicateError):
        await storage.clients.add_client(builders.client(name="Another"))


async def test_update_replaces_every_field(storage: Storage) -> None:
    await storage.clients.add_client(builders.client())
    changed = builders.client(
        name="Renamed",
        delivery_mode=DeliveryMode.POLL,
        notification_endpoint=None,
        jwks=None,
        scopes=("openid",),
        updated_at=builders.T0 + 5,
    )
    await storage.clients.update_client(changed)
    assert await storage.clients.get_client("client-1") == changed


async def test_update_of_missing_client_raises(storage: Storage) -> None:
    with pytest.raises(MissingError):
        await storage.clients.update_client(builders.client("ghost"))


async def test_remove_reports_whether_it_removed(storage: Storage) -> None:
    await storage.clients.add_client(builders.client())
    assert await storage.clients.remove_client("client-1") is True
    assert await storage.clients.remove_client("client-1") is False
    assert await storage.clients.get_client("client-1") is None


async def test_list_clients_sorted_by_id(storage: Storage) -> None:
    for client_id in ("b", "c", "a"):
        await storage.clients.add_client(builders.client(client_id))
    assert [c.client_id for c in await storage.clients.list_clients()] == ["a", "b", "c"]


async def test_returned_client_is_a_copy(storage: Storage) -> None:
    await storage.clients.add_client(builders.client())
    fetched = await storage.clients.get_client("client-1")
    assert fetched is not None
    assert fetched.jwks is not None
    fetched.jwks["keys"].clear()
    fetched.hint_token_issuers["evil"] = {}
    again = await storage.clients.get_client("client-1")
    assert again == builders.client()
    assert again != fetched
