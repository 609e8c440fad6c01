"""``private_key_jwt`` and signed requests for clients that registered a ``jwks_uri``
(items 23, 200): the set is fetched through the guarded outbound client, cached, fetched
again after its TTL or once when a JWT names an unknown ``kid``; a failure to get it is
``invalid_client`` (client auth) or ``invalid_request`` (signed request)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backchannel.app import build_provider
from backchannel.outbound import CachingJwksFetcher, OutboundClient, StaticResolver
from backchannel.protocol.model import AuthMethod, Client
from backchannel.protocol.provider import Provider
from tests.protocol.backchannel_support import (
    ES256_KEY,
    OTHER_KEY,
    ClientKey,
    add_person,
    assertion,
    assertion_fields,
    fails,
    new_provider,
    ok,
    post,
    register,
)
from tests.protocol.test_client_auth import authenticate, form_post, refused
from tests.protocol.test_request_object import signed
from tests.support.ciba import SECRET
from tests.support.clock import FakeClock
from tests.support.receiver import Receiver, Reply, running_receiver

pytestmark = pytest.mark.anyio


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as started:
        started.on("/jwks", Reply.json(ES256_KEY.jwks()))
        yield started


async def jwks_uri_provider(
    receiver: Receiver,
    *,
    dev_mode: bool = True,
    resolver: StaticResolver | None = None,
    **fields: Any,
) -> Provider:
    provider = await new_provider(dev_mode=dev_mode)
    outbound = OutboundClient(provider.settings, resolver, pooled=False)
    provider.jwks_fetcher = CachingJwksFetcher(outbound, provider.clock)
    fields.setdefault("jwks_uri", receiver.url("/jwks"))
    await register(provider, method=AuthMethod.PRIVATE_KEY_JWT, **fields)
    return provider


def clock_of(provider: Provider) -> FakeClock:
    assert isinstance(provider.clock, FakeClock)
    return provider.clock


async def assert_authenticates(provider: Provider, key: ClientKey, jti: str) -> None:
    token = assertion(key, jti=jti, exp=provider.clock.now() + 60)
    outcome = await authenticate(provider, form_post(assertion_fields(token)))
    assert isinstance(outcome, Client), outcome


async def test_private_key_jwt_with_jwks_uri_authenticates(receiver: Receiver) -> None:
    provider = await jwks_uri_provider(receiver)
    await assert_authenticates(provider, ES256_KEY, "j1")
    await assert_authenticates(provider, ES256_KEY, "j2")
    assert len(receiver.calls_to("/jwks")) == 1  # cached
    assert receiver.calls[0].method == "GET"


async def test_the_set_is_fetched_again_after_its_ttl(receiver: Receiver) -> None:
    provider = await jwks_uri_provider(receiver)
    await assert_authenticates(provider, ES256_KEY, "j1")
    clock_of(provider).advance(301)
    await assert_authenticates(provider, ES256_KEY, "j2")
    assert len(receiver.calls_to("/jwks")) == 2


async def test_client_key_rotation_is_picked_up_on_an_unknown_kid(receiver: Receiver) -> None:
    provider = await jwks_uri_provider(receiver)
    await assert_authenticates(provider, ES256_KEY, "j1")
    receiver.on("/jwks", Reply.json(OTHER_KEY.jwks()))  # the client rotated to a new kid
    clock_of(provider).advance(30)
    await assert_authenticates(provider, OTHER_KEY, "j2")
    assert len(receiver.calls_to("/jwks")) == 2


async def test_unknown_kid_refetches_at_most_once_per_interval(receiver: Receiver) -> None:
    """Forged kids cannot make Backchannel hammer the client's server."""
    provider = await jwks_uri_provider(receiver)
    await assert_authenticates(provider, ES256_KEY, "j1")
    for n in range(3):
        await refused(provider, form_post(assertion_fields(assertion(OTHER_KEY, jti=f"x{n}"))))
    assert len(receiver.calls_to("/jwks")) == 1  # within min_refresh of the first fetch
    clock_of(provider).advance(11)
    await refused(provider, form_post(assertion_fields(assertion(OTHER_KEY, jti="x9"))))
    assert len(receiver.calls_to("/jwks")) == 2


async def test_bad_signature_with_a_known_kid_does_not_refetch(receiver: Receiver) -> None:
    provider = await jwks_uri_provider(receiver)
    impostor = ClientKey("ES256", OTHER_KEY.key, ES256_KEY.kid)
    clock_of(provider).advance(60)
    error = await refused(provider, form_post(assertion_fields(assertion(impostor))))
    assert "signature" in error.description
    assert len(receiver.calls_to("/jwks")) == 1


@pytest.mark.parametrize("reply", [Reply(500), Reply(200, b"<html>"), Reply.json({"no": "keys"})])
async def test_fetch_failure_is_invalid_client(receiver: Receiver, reply: Reply) -> None:
    receiver.on("/jwks", reply)
    provider = await jwks_uri_provider(receiver)
    error = await refused(provider, form_post(assertion_fields(assertion(ES256_KEY))))
    assert "cannot get the client's keys" in error.description


async def test_unreachable_jwks_uri_is_invalid_client(receiver: Receiver) -> None:
    from tests.support.http import free_port

    provider = await jwks_uri_provider(receiver, jwks_uri=f"http://127.0.0.1:{free_port()}/j")
    error = await refused(provider, form_post(assertion_fields(assertion(ES256_KEY))))
    assert "127.0.0.1" in error.description


async def test_item_200_jwks_uri_resolving_inside_is_refused(receiver: Receiver) -> None:
    provider = await jwks_uri_provider(
        receiver,
        dev_mode=False,
        resolver=StaticResolver({"keys.example.test": ["169.254.169.254"]}),
        jwks_uri="https://keys.example.test/jwks",
    )
    error = await refused(provider, form_post(assertion_fields(assertion(ES256_KEY))))
    assert "cloud metadata address 169.254.169.254" in error.description


async def test_item_23_fetched_set_with_private_keys_is_refused(receiver: Receiver) -> None:
    receiver.on("/jwks", Reply.json({"keys": [dict(ES256_KEY.key.as_dict(private=True))]}))
    provider = await jwks_uri_provider(receiver)
    error = await refused(provider, form_post(assertion_fields(assertion(ES256_KEY))))
    assert "private or symmetric" in error.description


async def test_without_a_fetcher_jwks_uri_clients_are_invalid_client(receiver: Receiver) -> None:
    provider = await jwks_uri_provider(receiver)
    provider.jwks_fetcher = None
    error = await refused(provider, form_post(assertion_fields(assertion(ES256_KEY))))
    assert "jwks_uri" in error.description
    assert receiver.calls == []


async def test_signed_request_verified_with_the_jwks_uri_set(receiver: Receiver) -> None:
    provider = await jwks_uri_provider(receiver, request_signing_alg="ES256")
    await add_person(provider)
    fields = {**signed(), **assertion_fields(assertion(ES256_KEY))}
    await ok(provider, post(fields, client_id=None))


async def test_signed_request_fetch_failure_is_invalid_request(receiver: Receiver) -> None:
    """A secret-authenticated client whose request signing keys live at its jwks_uri: when
    the set cannot be had, the signed request is invalid_request (item 65)."""
    receiver.on("/jwks", Reply(503))
    provider = await jwks_uri_provider(receiver, request_signing_alg="ES256")
    client = await provider.storage.clients.get_client("rp-1")
    assert client is not None
    client.token_endpoint_auth_method = AuthMethod.CLIENT_SECRET_BASIC
    client.secret_hash = provider.hasher.fast(SECRET)
    await provider.storage.clients.update_client(client)
    await add_person(provider)
    description = await fails(provider, post(signed()), "invalid_request")
    assert "cannot get the client's keys" in description
    receiver.on("/jwks", Reply.json(ES256_KEY.jwks()))
    await ok(provider, post(signed(jti="req-2")))


async def test_build_provider_wires_the_caching_fetcher(tmp_path: Path) -> None:
    from backchannel.settings import Settings

    settings = Settings(
        database={"url": f"sqlite+aiosqlite:///{tmp_path}/bc.db"},
        keys={"algorithms": ["RS256"], "master_secret_file": str(tmp_path / "master.key")},
    )
    from backchannel.storage.migrate import upgrade_if_embedded

    await upgrade_if_embedded(settings.database)
    provider = await build_provider(settings)
    try:
        assert isinstance(provider.jwks_fetcher, CachingJwksFetcher)
    finally:
        await provider.storage.close()
