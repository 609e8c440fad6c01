"""The signing key set: generation, encryption at rest, JWKS, signing, rotation."""

from __future__ import annotations

import asyncio
import base64
import os
from unittest.mock import ANY

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from backchannel.protocol.endpoints import jwks as jwks_endpoint
from backchannel.protocol.http import HttpRequest
from backchannel.protocol.jose import JoseError, has_private_or_symmetric_keys, public_jwk
from backchannel.protocol.keys import (
    KeyRing,
    KeyRingError,
    KeyStatus,
    decrypt_private_jwk,
    encrypt_private_jwk,
)
from backchannel.protocol.model import SigningKey
from backchannel.protocol.ports import KeyStore
from backchannel.protocol.provider import Provider
from backchannel.protocol.secrets import RandomTokens, SecretHasher
from backchannel.protocol.signing_process import signing_process
from backchannel.settings import KeySettings, Settings
from backchannel.storage import memory_storage

ALGORITHMS = ("RS256", "PS256", "ES256")
DELAY = 3600
GRACE = 7200
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k"}


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now_value = now

    def now(self) -> float:
        return self.now_value

    def advance(self, seconds: float) -> None:
        self.now_value += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store() -> KeyStore:
    return memory_storage().keys


@pytest.fixture
def kek() -> bytes:
    return os.urandom(32)


@pytest.fixture
def settings() -> KeySettings:
    return KeySettings(rotation_delay=DELAY, grace_period=GRACE)


@pytest.fixture
async def ring(store: KeyStore, clock: FakeClock, kek: bytes, settings: KeySettings) -> KeyRing:
    ring = KeyRing(store, clock, kek, settings)
    await ring.ensure_keys()
    return ring


def kids(jwks: dict[str, object]) -> list[str]:
    keys = jwks["keys"]
    assert isinstance(keys, list)
    return [str(key["kid"]) for key in keys]


def ring_keys(ring: KeyRing) -> list[SigningKey]:
    keys: list[SigningKey] = ring.keys()
    return keys


def signing_kid(ring: KeyRing, alg: str) -> str:
    token = ring.sign({"sub": "x"}, alg)
    header, _ = ring.verify(token)
    return str(header["kid"])


@pytest.mark.anyio
async def test_first_ensure_keys_creates_one_key_per_algorithm(ring: KeyRing) -> None:
    assert sorted(key.alg for key in ring_keys(ring)) == sorted(ALGORITHMS)
    assert ring.signing_algorithms() == list(ALGORITHMS)
    assert all(ring.status(key) is KeyStatus.SIGNING for key in ring_keys(ring))


@pytest.mark.anyio
async def test_item_191_rsa_keys_have_at_least_2048_bits(ring: KeyRing) -> None:
    for key in ring_keys(ring):
        if key.public_jwk["kty"] == "RSA":
            modulus = base64.urlsafe_b64decode(key.public_jwk["n"] + "==")
            assert int.from_bytes(modulus, "big").bit_length() >= 2048
        else:
            assert key.public_jwk["crv"] == "P-256"


@pytest.mark.anyio
async def test_second_ensure_keys_adds_none(
    ring: KeyRing, store: KeyStore, clock: FakeClock, kek: bytes, settings: KeySettings
) -> None:
    before = {key.kid for key in await store.list_keys()}
    clock.advance(60)
    again = KeyRing(store, clock, kek, settings)
    await again.ensure_keys()
    await ring.ensure_keys()
    assert {key.kid for key in await store.list_keys()} == before
    assert {key.kid for key in ring_keys(again)} == before


@pytest.mark.anyio
async def test_private_keys_at_rest_are_encrypted(
    ring: KeyRing, store: KeyStore, kek: bytes
) -> None:
    for key in await store.list_keys():
        assert not PRIVATE_MEMBERS & key.public_jwk.keys()
        assert '"d"' not in key.private_jwk_encrypted
        private = decrypt_private_jwk(key.private_jwk_encrypted, key.kid, kek)
        assert private["d"] not in key.private_jwk_encrypted
        assert public_jwk(private) == key.public_jwk


@pytest.mark.anyio
async def test_wrong_encryption_key_is_a_clear_error(ring: KeyRing, store: KeyStore) -> None:
    key = (await store.list_keys())[0]
    with pytest.raises(KeyRingError, match="master secret"):
        decrypt_private_jwk(key.private_jwk_encrypted, key.kid, os.urandom(32))


@pytest.mark.anyio
async def test_ring_with_wrong_master_secret_refuses_to_start(
    ring: KeyRing, store: KeyStore, clock: FakeClock, settings: KeySettings
) -> None:
    with pytest.raises(KeyRingError, match="cannot be decrypted"):
        await KeyRing(store, clock, os.urandom(32), settings).ensure_keys()


def test_ciphertext_is_bound_to_its_kid(kek: bytes) -> None:
    sealed = encrypt_private_jwk({"kty": "EC", "d": "secret"}, "kid-a", kek)
    assert decrypt_private_jwk(sealed, "kid-a", kek)["d"] == "secret"
    with pytest.raises(KeyRingError):
        decrypt_private_jwk(sealed, "kid-b", kek)


@pytest.mark.anyio
async def test_item_192_jwks_has_public_members_and_unique_kids(ring: KeyRing) -> None:
    jwks = ring.jwks()
    assert len(jwks["keys"]) == 3
    assert not has_private_or_symmetric_keys(jwks)
    for key in jwks["keys"]:
        assert not PRIVATE_MEMBERS & key.keys()
        assert key["use"] == "sig"
        assert key["alg"] in ALGORITHMS
        assert key["kid"]
    assert len(set(kids(jwks))) == len(jwks["keys"])


@pytest.mark.anyio
async def test_jwks_is_a_copy(ring: KeyRing) -> None:
    ring.jwks()["keys"][0]["kid"] = "tampered"
    assert "tampered" not in kids(ring.jwks())


@pytest.mark.anyio
@pytest.mark.parametrize("alg", ALGORITHMS)
async def test_item_128_sign_verifies_through_the_published_jwks(ring: KeyRing, alg: str) -> None:
    claims = {"iss": "https://op.example", "sub": "alice", "aud": "rp", "exp": 2, "iat": 1}
    token = ring.sign(claims, alg, typ="JWT")

    published = KeySet.import_key_set(ring.jwks())  # type: ignore[arg-type]
    independent = jwt.decode(token, published, algorithms=[alg])
    assert independent.claims == claims
    assert independent.header["alg"] == alg
    assert independent.header["kid"] in kids(ring.jwks())

    header, verified = ring.verify(token)
    assert verified == claims
    assert header["typ"] == "JWT"


@pytest.mark.anyio
async def test_verify_rejects_a_token_from_another_key_set(
    ring: KeyRing, clock: FakeClock, settings: KeySettings
) -> None:
    stranger = KeyRing(memory_storage().keys, clock, os.urandom(32), settings)
    await stranger.ensure_keys()
    with pytest.raises(JoseError):
        ring.verify(stranger.sign({"sub": "mallory"}, "ES256"))


@pytest.mark.anyio
async def test_verify_honours_the_algorithm_allow_list(ring: KeyRing) -> None:
    token = ring.sign({"sub": "alice"}, "RS256")
    with pytest.raises(JoseError):
        ring.verify(token, algorithms=["ES256"])


@pytest.mark.anyio
async def test_sign_without_a_key_for_the_algorithm_is_a_runtime_error(ring: KeyRing) -> None:
    with pytest.raises(RuntimeError, match="no signing key for ES384"):
        ring.sign({"sub": "alice"}, "ES384")


@pytest.mark.anyio
async def test_unconfigured_ring_cannot_sign(
    store: KeyStore, clock: FakeClock, kek: bytes, settings: KeySettings
) -> None:
    ring = KeyRing(store, clock, kek, settings)
    with pytest.raises(RuntimeError):
        ring.sign({"sub": "alice"})


@pytest.mark.anyio
async def test_rotation_publishes_now_signs_after_delay_retires_after_grace(
    ring: KeyRing, clock: FakeClock
) -> None:
    old_kid = signing_kid(ring, "ES256")
    clock.advance(10)
    [new] = await ring.rotate("ES256")

    assert new.alg == "ES256"
    assert new.sign_from == clock.now() + DELAY
    assert kids(ring.jwks())[0] == new.kid  # newest first, published at once
    assert old_kid in kids(ring.jwks())
    assert ring.status(new) is KeyStatus.NEXT

    clock.advance(DELAY - 1)
    await ring.refresh_if_stale()
    assert signing_kid(ring, "ES256") == old_kid

    clock.advance(1)
    assert signing_kid(ring, "ES256") == new.kid
    old = next(key for key in ring_keys(ring) if key.kid == old_kid)
    assert ring.status(old) is KeyStatus.RETIRING
    assert old.sign_until == new.sign_from
    assert old.publish_until == new.sign_from + GRACE

    clock.advance(GRACE - 1)
    assert old_kid in kids(ring.jwks())
    clock.advance(1)
    assert old_kid not in kids(ring.jwks())
    await ring.refresh_if_stale()
    assert old_kid not in kids(ring.jwks())
    assert ring.status(old) is KeyStatus.RETIRED
    assert old_kid in {key.kid for key in ring_keys(ring)}  # kept on record


@pytest.mark.anyio
async def test_sign_uses_the_key_that_signs_at_the_given_moment(
    ring: KeyRing, clock: FakeClock
) -> None:
    """A token set issued at ``now`` is signed with the key current at ``now``."""
    old_kid = signing_kid(ring, "ES256")
    [new] = await ring.rotate("ES256")
    before = ring.sign({"sub": "x"}, "ES256", now=new.sign_from - 1)
    after = ring.sign({"sub": "x"}, "ES256", now=new.sign_from)
    assert ring.verify(before)[0]["kid"] == old_kid
    assert ring.verify(after)[0]["kid"] == new.kid


@pytest.mark.anyio
async def test_rotation_of_one_algorithm_leaves_the_others(ring: KeyRing) -> None:
    before = {alg: signing_kid(ring, alg) for alg in ("RS256", "PS256")}
    await ring.rotate("ES256")
    assert {alg: signing_kid(ring, alg) for alg in ("RS256", "PS256")} == before
    assert len(ring.keys()) == 4


@pytest.mark.anyio
async def test_rotate_all_configured_algorithms(ring: KeyRing, clock: FakeClock) -> None:
    created = await ring.rotate()
    assert sorted(key.alg for key in created) == sorted(ALGORITHMS)
    assert len(set(kids(ring.jwks()))) == 6
    clock.advance(DELAY)
    assert {signing_kid(ring, alg) for alg in ALGORITHMS} == {key.kid for key in created}


@pytest.mark.anyio
async def test_rotating_twice_within_the_delay_chains_the_keys(
    ring: KeyRing, clock: FakeClock
) -> None:
    [first] = await ring.rotate("RS256")
    clock.advance(100)
    [second] = await ring.rotate("RS256")
    clock.advance(DELAY - 100)
    assert signing_kid(ring, "RS256") == first.kid
    clock.advance(100)
    assert signing_kid(ring, "RS256") == second.kid


@pytest.mark.anyio
async def test_rotate_refuses_an_unsupported_algorithm(ring: KeyRing) -> None:
    with pytest.raises(KeyRingError, match="HS256"):
        await ring.rotate("HS256")


@pytest.mark.anyio
async def test_refresh_picks_up_a_rotation_by_another_process(
    ring: KeyRing, store: KeyStore, clock: FakeClock, kek: bytes, settings: KeySettings
) -> None:
    other = KeyRing(store, clock, kek, settings)
    await other.ensure_keys()
    [new] = await other.rotate("PS256")

    await ring.refresh_if_stale()  # cache is fresh: no reload yet
    assert new.kid not in kids(ring.jwks())
    clock.advance(30)
    await ring.refresh_if_stale()
    assert new.kid in kids(ring.jwks())


@pytest.mark.anyio
async def test_explicit_refresh_reloads_at_once(
    ring: KeyRing, store: KeyStore, clock: FakeClock, kek: bytes, settings: KeySettings
) -> None:
    other = KeyRing(store, clock, kek, settings)
    await other.ensure_keys()
    [new] = await other.rotate("RS256")
    await ring.refresh()
    assert new.kid in kids(ring.jwks())


@pytest.mark.anyio
async def test_jwks_endpoint_serves_public_keys_with_cache_header(
    store: KeyStore, clock: FakeClock, kek: bytes
) -> None:
    storage = memory_storage()
    settings = Settings(dev_mode=True, issuer="http://127.0.0.1:8080")
    ring = KeyRing(storage.keys, clock, kek, settings.keys)
    await ring.ensure_keys()
    provider = Provider(
        settings=settings,
        storage=storage,
        keys=ring,
        hasher=SecretHasher(os.urandom(32)),
        clock=clock,
        random=RandomTokens(),
    )
    request = HttpRequest(method="GET", url="http://127.0.0.1:8080/jwks", headers={})

    response = await jwks_endpoint.handle(provider, request)

    assert response.status == 200
    assert response.headers["Cache-Control"] == "public, max-age=300"
    assert response.body == ring.jwks()
    assert not has_private_or_symmetric_keys(response.body)


@pytest.mark.anyio
async def test_refresh_if_stale_reloads_when_a_key_boundary_passes(
    store: KeyStore, clock: FakeClock, kek: bytes
) -> None:
    quick = KeySettings(rotation_delay=10, grace_period=GRACE)
    ring = KeyRing(store, clock, kek, quick)
    await ring.ensure_keys()
    await ring.rotate("ES256")  # a boundary 10 s from now
    other = KeyRing(store, clock, kek, quick)
    await other.ensure_keys()
    clock.advance(1)
    [elsewhere] = await other.rotate("PS256")

    clock.advance(4)
    await ring.refresh_if_stale()
    assert elsewhere.kid not in kids(ring.jwks())
    clock.advance(5)
    await ring.refresh_if_stale()
    assert elsewhere.kid in kids(ring.jwks())


@pytest.mark.anyio
async def test_rsa_signatures_are_made_beside_the_loop_and_equal_the_inline_ones(
    ring: KeyRing,
) -> None:
    """RS256 (PKCS#1 v1.5) is deterministic: the signing process's token is the same."""
    claims = {"sub": "x", "iat": 1}
    assert await signing_process().started()
    beside = await ring.sign_beside_loop(claims, "RS256")
    assert beside == ring.sign(claims, "RS256")
    header, verified = ring.verify(beside)
    assert (header["alg"], verified) == ("RS256", claims)


@pytest.mark.anyio
async def test_ps256_and_es256_signed_beside_the_loop_verify(ring: KeyRing) -> None:
    for alg in ("PS256", "ES256"):
        token = await ring.sign_beside_loop({"sub": alg}, alg, "at+jwt")
        header, claims = ring.verify(token)
        assert (header["alg"], header["typ"], claims) == (alg, "at+jwt", {"sub": alg})


@pytest.mark.anyio
async def test_signing_beside_the_loop_without_a_key_is_a_clear_error(ring: KeyRing) -> None:
    with pytest.raises(KeyRingError, match="no signing key for RS512"):
        await ring.sign_beside_loop({"sub": "x"}, "RS512")


@pytest.mark.anyio
async def test_a_token_pair_signed_in_one_hand_off_keeps_its_order(ring: KeyRing) -> None:
    jobs = [({"sub": "access"}, "ES256", "at+jwt"), ({"sub": "id"}, "RS256", "JWT")]
    access, id_token = await ring.sign_all_beside_loop(jobs)
    assert ring.verify(access) == ({"typ": "at+jwt", "alg": "ES256", "kid": ANY}, jobs[0][0])
    assert id_token == ring.sign({"sub": "id"}, "RS256")


@pytest.mark.anyio
async def test_a_failure_while_signing_reaches_the_caller_and_signing_goes_on(
    ring: KeyRing,
) -> None:
    with pytest.raises(TypeError):  # orjson cannot encode the claims
        await ring.sign_beside_loop({"sub": object()}, "RS256")
    claims = {"sub": "after"}
    assert await ring.sign_beside_loop(claims, "RS256") == ring.sign(claims, "RS256")


@pytest.mark.anyio
async def test_concurrent_signatures_each_get_their_own_token_and_a_cancelled_one_is_dropped(
    ring: KeyRing,
) -> None:
    assert await signing_process().started()  # else the first is signed inline, at once
    cancelled = asyncio.ensure_future(ring.sign_beside_loop({"sub": "gone"}, "RS256"))
    await asyncio.sleep(0)
    cancelled.cancel()
    subjects = [f"user-{n}" for n in range(12)]
    tokens = await asyncio.gather(*(ring.sign_beside_loop({"sub": s}, "RS256") for s in subjects))
    assert [ring.verify(token)[1]["sub"] for token in tokens] == subjects
    assert cancelled.cancelled()
