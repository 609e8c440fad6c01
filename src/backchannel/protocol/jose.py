"""The only module that imports the JOSE library (joserfc).

Everything else signs and verifies through these few functions, so the library can be
swapped and every JWT rule (no ``none``, no HMAC from clients, no JWE) lives in one place.
Claim checks (exp, nbf, aud, ...) are the caller's: each flow has its own rules.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Collection
from typing import Any

import orjson
from joserfc import jwt
from joserfc.errors import JoseError as _LibraryError
from joserfc.jwk import ECKey, KeySet, RSAKey

JSON = dict[str, Any]
ASYMMETRIC_ALGORITHMS = ("RS256", "PS256", "ES256", "RS384", "PS384", "ES384", "RS512", "PS512")
_CURVES = {"ES256": "P-256", "ES384": "P-384"}
_HASHES = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}


class JoseError(Exception):
    """A JWT or JWK could not be parsed, verified or used. The message is safe to show."""


def generate_private_jwk(alg: str, kid: str) -> JSON:
    """A new private key for ``alg`` (RSA-2048 for RS*/PS*, P-256 for ES256)."""
    params = {"kid": kid, "alg": alg, "use": "sig"}
    if alg.startswith(("RS", "PS")):
        key: RSAKey | ECKey = RSAKey.generate_key(2048, parameters=params)  # type: ignore[arg-type]
    elif alg in _CURVES:
        key = ECKey.generate_key(_CURVES[alg], parameters=params)  # type: ignore[arg-type]
    else:
        raise JoseError(f"unsupported signing algorithm {alg}")
    return dict(key.as_dict(private=True))


def public_jwk(private: JSON) -> JSON:
    """The public half of a JWK, keeping kid/alg/use."""
    key = _import_key(private)
    public = dict(key.as_dict(private=False))
    for name in ("kid", "alg", "use"):
        if name in private:
            public[name] = private[name]
    return public


class Signer:
    """A private key imported once and reused for every signature."""

    __slots__ = ("_key", "alg", "kid")

    def __init__(self, private: JSON, alg: str) -> None:
        self._key = _import_key(private)
        self.alg = alg
        self.kid = str(private["kid"])

    def sign(self, claims: JSON, typ: str = "JWT") -> str:
        header = {"alg": self.alg, "kid": self.kid, "typ": typ}
        return jwt.encode(header, claims, self._key, algorithms=[self.alg])


class Verifier:
    """A public key set imported once. ``verify`` checks the signature only."""

    __slots__ = ("_keys",)

    def __init__(self, jwks: JSON) -> None:
        try:
            self._keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
        except (_LibraryError, ValueError, TypeError, KeyError) as exc:
            raise JoseError(f"unusable JWK set: {exc}") from None

    def verify(self, token: str, algorithms: Collection[str]) -> tuple[JSON, JSON]:
        """Returns (header, claims) of a JWS whose signature verifies with one of the keys
        under one of ``algorithms`` (asymmetric only)."""
        header = peek_header(token)
        alg = header.get("alg")
        allowed = [a for a in algorithms if a in ASYMMETRIC_ALGORITHMS]
        if alg not in allowed:
            raise JoseError(f"algorithm {alg!r} is not accepted here")
        try:
            decoded = jwt.decode(token, self._keys, algorithms=allowed)
        except (_LibraryError, ValueError, TypeError, KeyError) as exc:
            raise JoseError(f"signature check failed: {_describe(exc)}") from None
        if not isinstance(decoded.claims, dict):
            raise JoseError("the JWT payload is not a JSON object")
        return dict(decoded.header), dict(decoded.claims)


def peek_header(token: str) -> JSON:
    """The protected header of a compact JWS, unverified. Refuses JWE and non-JWS."""
    parts = _split(token)
    header = _decode_segment(parts[0], "header")
    if "enc" in header:
        raise JoseError("encrypted JWTs are not supported")
    return header


def peek_claims(token: str) -> JSON:
    """The payload of a compact JWS, *unverified*: use only to find which key to check with."""
    return _decode_segment(_split(token)[1], "payload")


def half_hash(value: str, alg: str) -> str:
    """OIDC §3.1.3.6 at_hash style: left half of the hash matching ``alg``, base64url."""
    digest = _HASHES.get(alg[-3:], hashlib.sha256)(value.encode("ascii")).digest()
    return b64url(digest[: len(digest) // 2])


def thumbprint(jwk: JSON) -> str:
    """RFC 7638 SHA-256 thumbprint."""
    return str(_import_key(jwk).thumbprint())


def has_private_or_symmetric_keys(jwks: JSON) -> bool:
    """OIDR §2: a client's JWK set must hold public keys only."""
    private_members = {"d", "p", "q", "dp", "dq", "qi", "k"}
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        return False
    return any(
        isinstance(k, dict) and (k.get("kty") == "oct" or private_members & k.keys()) for k in keys
    )


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _split(token: str) -> list[str]:
    if not isinstance(token, str) or len(token) > 16384:
        raise JoseError("not a compact JWT")
    parts = token.split(".")
    if len(parts) == 5:
        raise JoseError("encrypted JWTs are not supported")
    if len(parts) != 3 or not all(parts[:2]):
        raise JoseError("not a compact JWT")
    return parts


def _decode_segment(segment: str, what: str) -> JSON:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = orjson.loads(raw)
    except (ValueError, orjson.JSONDecodeError):
        raise JoseError(f"the JWT {what} is not base64url JSON") from None
    if not isinstance(value, dict):
        raise JoseError(f"the JWT {what} is not a JSON object")
    return value


def _import_key(jwk: JSON) -> RSAKey | ECKey:
    kty = jwk.get("kty")
    try:
        if kty == "RSA":
            return RSAKey.import_key(jwk)
        if kty == "EC":
            return ECKey.import_key(jwk)
    except (_LibraryError, ValueError, TypeError, KeyError) as exc:
        raise JoseError(f"unusable JWK: {_describe(exc)}") from None
    raise JoseError(f"unsupported key type {kty!r}")


def _describe(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text[:200]
