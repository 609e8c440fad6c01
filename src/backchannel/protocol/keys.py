"""The provider's signing key set: generation, rotation, JWKS, cached signers.

Each configured algorithm has one key that signs now (the newest whose ``sign_from`` has
passed). ``rotate`` publishes a successor at once and lets it sign only after
``rotation_delay``, so relying parties that cache the JWKS see the new key before any token
signed with it; the old key stays published for ``grace_period`` after it stops signing.
Private JWKs are stored AES-256-GCM encrypted under the key-encryption key, with the kid as
associated data so a ciphertext cannot be moved to another key's row.

The store is the source of truth shared by every process; this ring caches it and reloads
when its cache is older than 30 s or a key boundary (sign_from, sign_until, publish_until)
has passed.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from backchannel.protocol.jose import (
    JoseError,
    Signer,
    Verifier,
    generate_private_jwk,
    public_jwk,
)
from backchannel.protocol.model import JSON, SigningKey
from backchannel.protocol.ports import Clock, KeyStore
from backchannel.protocol.signing_process import signing_process

if TYPE_CHECKING:
    from backchannel.settings import KeySettings

SUPPORTED_ALGORITHMS = ("RS256", "PS256", "ES256")
CACHE_SECONDS = 30.0
_CIPHER_PREFIX = "aesgcm:"
_NONCE_BYTES = 12
_INFINITY = float("inf")


class KeyRingError(RuntimeError):
    """The key set cannot do what was asked (no key for an algorithm, undecryptable key)."""


class KeyStatus(StrEnum):
    SIGNING = "signing"
    NEXT = "next"
    RETIRING = "retiring"
    RETIRED = "retired"


def encrypt_private_jwk(private: JSON, kid: str, encryption_key: bytes) -> str:
    """``aesgcm:`` + base64url(nonce || ciphertext), the kid bound as associated data."""
    nonce = os.urandom(_NONCE_BYTES)
    plaintext = json.dumps(private, separators=(",", ":")).encode("utf-8")
    sealed = AESGCM(encryption_key).encrypt(nonce, plaintext, kid.encode("utf-8"))
    return _CIPHER_PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")


def decrypt_private_jwk(encrypted: str, kid: str, encryption_key: bytes) -> JSON:
    if not encrypted.startswith(_CIPHER_PREFIX):
        raise KeyRingError(f"signing key {kid}: unknown encryption scheme")
    body = encrypted.removeprefix(_CIPHER_PREFIX)
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        plaintext = AESGCM(encryption_key).decrypt(
            raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], kid.encode("utf-8")
        )
    except (InvalidTag, binascii.Error, ValueError):
        raise KeyRingError(
            f"signing key {kid} cannot be decrypted: the master secret is not the one "
            "it was encrypted with (check keys.master_secret / keys.master_secret_file)"
        ) from None
    value = json.loads(plaintext)
    if not isinstance(value, dict):
        raise KeyRingError(f"signing key {kid}: the decrypted key is not a JWK")
    return value


@dataclass(slots=True)
class _View:
    """What the cached keys mean at one moment; rebuilt when a boundary passes."""

    signing: dict[str, SigningKey]  # alg -> the key that signs now
    published: list[SigningKey]  # newest first
    jwks: JSON
    verifier: Verifier | None  # None while nothing is published
    valid_until: float  # the next sign_from / sign_until / publish_until boundary


class KeyRing:
    def __init__(
        self, store: KeyStore, clock: Clock, encryption_key: bytes, settings: KeySettings
    ) -> None:
        if len(encryption_key) != 32:
            raise ValueError("the key-encryption key must have 32 bytes")
        self._store = store
        self._clock = clock
        self._encryption_key = encryption_key
        self._settings = settings
        self._keys: list[SigningKey] = []
        self._signers: dict[str, Signer] = {}
        self._loaded_at = -_INFINITY
        self._reload_at = -_INFINITY
        self._view: _View | None = None

    # -- loading -------------------------------------------------------------------------

    async def ensure_keys(self) -> None:
        """Load the keys; give every configured algorithm without a current key a new one."""
        await self.refresh()
        now = self._clock.now()
        missing = [alg for alg in self._settings.algorithms if alg not in self._current(now)]
        for alg in missing:
            await self._store.add_key(self._new_key(alg, now, now))
        if missing:
            await self.refresh()

    async def refresh(self) -> None:
        """Reload from the store (another process may have rotated)."""
        keys = await self._store.list_keys()
        self._keys = sorted(keys, key=lambda k: (k.created_at, k.sign_from), reverse=True)
        self._loaded_at = self._clock.now()
        self._view = None
        self._reload_at = self._build_view(self._loaded_at).valid_until

    async def refresh_if_stale(self) -> None:
        """Cheap unless the cache is older than 30 s or a key boundary has passed."""
        now = self._clock.now()
        if now - self._loaded_at >= CACHE_SECONDS or now >= self._reload_at:
            await self.refresh()

    # -- using ---------------------------------------------------------------------------

    def sign(
        self,
        claims: dict[str, Any],
        alg: str = "RS256",
        typ: str = "JWT",
        *,
        now: float | None = None,
    ) -> str:
        """Signed with the key of ``alg`` that signs at ``now`` (default: the clock's)."""
        return self._signing(alg, now).sign(claims, typ)

    async def sign_beside_loop(
        self,
        claims: dict[str, Any],
        alg: str = "RS256",
        typ: str = "JWT",
        *,
        now: float | None = None,
    ) -> str:
        """``sign``, with an RSA signature computed in the signing process
        (``signing_process``): a third of a millisecond of OpenSSL, during which the event
        loop serves other requests. EC signatures cost less than the round trip and stay
        inline."""
        (token,) = await self.sign_all_beside_loop([(claims, alg, typ)], now=now)
        return token

    async def sign_all_beside_loop(
        self, jobs: Sequence[tuple[dict[str, Any], str, str]], *, now: float | None = None
    ) -> list[str]:
        """Several (claims, alg, typ) signed together (a token response's access token and
        ID token): the RSA ones in the signing process, the others inline."""
        signing = [(self._signing(alg, now), claims, typ) for claims, alg, typ in jobs]
        return await signing_process().sign_all(signing)

    def _signing(self, alg: str, now: float | None) -> Signer:
        key = self._current(self._clock.now() if now is None else now).get(alg)
        if key is None:
            raise KeyRingError(
                f"no signing key for {alg} (configured: {self.signing_algorithms()})"
            )
        return self._signer(key)

    def verify(
        self, token: str, algorithms: Collection[str] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(header, claims) of a JWT signed by one of our published keys."""
        view = self._fresh_view()
        if view.verifier is None:
            raise JoseError("no signing key is published")
        accepted = algorithms if algorithms is not None else self._published_algorithms(view)
        return view.verifier.verify(token, accepted)

    def jwks(self) -> dict[str, Any]:
        """Public JWKs of every published key, newest first."""
        jwks = self._fresh_view().jwks
        return {"keys": [dict(key) for key in jwks["keys"]]}

    def signing_algorithms(self) -> list[str]:
        current = self._current(self._clock.now())
        return [alg for alg in SUPPORTED_ALGORITHMS if alg in current]

    def keys(self) -> list[SigningKey]:
        return list(self._keys)

    def status(self, key: SigningKey) -> KeyStatus:
        now = self._clock.now()
        if self._current(now).get(key.alg) is key:
            return KeyStatus.SIGNING
        if key.sign_from > now and key.published_at(now):
            return KeyStatus.NEXT
        return KeyStatus.RETIRING if key.published_at(now) else KeyStatus.RETIRED

    # -- rotating ------------------------------------------------------------------------

    async def rotate(self, alg: str | None = None) -> list[SigningKey]:
        """A successor per algorithm, published now, signing after ``rotation_delay``."""
        algorithms = [alg] if alg is not None else list(self._settings.algorithms)
        for name in algorithms:
            if name not in SUPPORTED_ALGORITHMS:
                raise KeyRingError(f"unsupported signing algorithm {name}")
        await self.refresh()
        now = self._clock.now()
        takes_over = now + self._settings.rotation_delay
        created = []
        for name in algorithms:
            new = self._new_key(name, now, takes_over)
            await self._store.add_key(new)
            for old in self._superseded(name, takes_over, exclude=new.kid):
                await self._store.update_key(self._retire(old, takes_over))
            created.append(new)
        await self.refresh()
        return created

    def _superseded(self, alg: str, takes_over: float, exclude: str) -> Iterable[SigningKey]:
        """Keys of ``alg`` that would otherwise still sign when the successor takes over."""
        for key in self._keys:
            still_signing = key.sign_until is None or key.sign_until > takes_over
            if key.alg == alg and key.kid != exclude and still_signing:
                yield key

    def _retire(self, key: SigningKey, sign_until: float) -> SigningKey:
        return replace(
            key, sign_until=sign_until, publish_until=sign_until + self._settings.grace_period
        )

    def _new_key(self, alg: str, now: float, sign_from: float) -> SigningKey:
        kid = self._unique_kid()
        private = generate_private_jwk(alg, kid)
        return SigningKey(
            kid=kid,
            alg=alg,
            public_jwk=public_jwk(private),
            private_jwk_encrypted=encrypt_private_jwk(private, kid, self._encryption_key),
            created_at=now,
            sign_from=sign_from,
        )

    def _unique_kid(self) -> str:
        taken = {key.kid for key in self._keys}
        while True:
            kid = secrets.token_urlsafe(12)
            if kid not in taken:
                return kid

    # -- cached views --------------------------------------------------------------------

    def _current(self, now: float) -> dict[str, SigningKey]:
        return self._fresh_view(now).signing

    def _fresh_view(self, now: float | None = None) -> _View:
        now = self._clock.now() if now is None else now
        view = self._view
        if view is None or now >= view.valid_until:
            view = self._build_view(now)
        return view

    def _build_view(self, now: float) -> _View:
        signing: dict[str, SigningKey] = {}
        for key in self._keys:
            best = signing.get(key.alg)
            if key.signs_at(now) and (best is None or key.sign_from > best.sign_from):
                signing[key.alg] = key
        published = [key for key in self._keys if key.published_at(now)]
        jwks = {"keys": [dict(key.public_jwk) for key in published]}
        verifier = Verifier(jwks) if published else None
        view = _View(signing, published, jwks, verifier, self._next_boundary(now))
        self._view = view
        self._keep_signers(signing.values())
        return view

    def _next_boundary(self, now: float) -> float:
        moments = (
            moment
            for key in self._keys
            for moment in (key.sign_from, key.sign_until, key.publish_until)
            if moment is not None and moment > now
        )
        return min(moments, default=_INFINITY)

    def _keep_signers(self, current: Iterable[SigningKey]) -> None:
        """Import the current keys once (decrypting them fails early on a wrong secret)."""
        self._signers = {key.kid: self._signer(key) for key in current}

    def _signer(self, key: SigningKey) -> Signer:
        signer = self._signers.get(key.kid)
        if signer is None:
            private = decrypt_private_jwk(key.private_jwk_encrypted, key.kid, self._encryption_key)
            try:
                signer = Signer(private, key.alg)
            except JoseError as exc:
                raise KeyRingError(f"signing key {key.kid} is unusable: {exc}") from None
            self._signers[key.kid] = signer
        return signer

    @staticmethod
    def _published_algorithms(view: _View) -> list[str]:
        return sorted({key.alg for key in view.published})
