"""The only module that imports the JOSE library (joserfc).

Everything else signs and verifies through these few functions, so the library can be
swapped and every JWT rule (no ``none``, no HMAC from clients, no JWE) lives in one place.
Claim checks (exp, nbf, aud, ...) are the caller's: each flow has its own rules.

joserfc imports and generates keys and verifies; ``Signer`` writes the compact JWS itself
with ``cryptography`` (a signature on every token response: joserfc's per-call header
checks, key dispatch and stdlib JSON cost about as much as an ES256 signature).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Collection
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc import jwt
from joserfc.errors import JoseError as _LibraryError
from joserfc.jwk import ECKey, KeySet, RSAKey

JSON = dict[str, Any]
ASYMMETRIC_ALGORITHMS = ("RS256", "PS256", "ES256", "RS384", "PS384", "ES384", "RS512", "PS512")
_CURVES = {"ES256": "P-256", "ES384": "P-384"}
_HASHES = {"256": hashlib.sha256, "384": hashlib.sha384, "512": hashlib.sha512}
_SIGNATURE_HASHES: dict[str, hashes.HashAlgorithm] = {
    "256": hashes.SHA256(),
    "384": hashes.SHA384(),
    "512": hashes.SHA512(),
}
_CURVE_CLASSES: dict[str, type[ec.EllipticCurve]] = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1}
_URLSAFE = bytes.maketrans(b"+/", b"-_")


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
    """A private key imported once and reused for every signature.

    Tokens are what joserfc's ``jwt.encode`` wrote before: header ``{"typ", "alg", "kid"}``
    in that order, the claims as compact UTF-8 JSON, both base64url without padding."""

    __slots__ = ("_headers", "_signature", "alg", "costly", "kid", "private_jwk")

    def __init__(self, private: JSON, alg: str) -> None:
        self._signature = _signature_function(_import_key(private), alg)
        self.alg = alg
        self.kid = str(private["kid"])
        # An RSA signature costs about as much as the rest of a token request.
        self.costly = alg.startswith(("RS", "PS"))
        self.private_jwk = private  # what the signing process is sent
        self._headers: dict[str, bytes] = {}  # typ -> encoded header segment

    def sign(self, claims: JSON, typ: str = "JWT") -> str:
        signing_input = self.signing_input(claims, typ)
        return self.finish(signing_input, self._signature(signing_input))

    def signing_input(self, claims: JSON, typ: str = "JWT") -> bytes:
        """The JWS signing input: the header and claims segments joined by a dot."""
        header = self._headers.get(typ) or self._header_segment(typ)
        return header + b"." + _b64url_bytes(orjson.dumps(claims))

    def raw_signature(self, signing_input: bytes) -> bytes:
        return self._signature(signing_input)

    @staticmethod
    def finish(signing_input: bytes, signature: bytes) -> str:
        """The compact JWS of a signing input and its signature."""
        return (signing_input + b"." + _b64url_bytes(signature)).decode("ascii")

    def _header_segment(self, typ: str) -> bytes:
        header = {"typ": typ, "alg": self.alg, "kid": self.kid}
        segment = _b64url_bytes(orjson.dumps(header))
        self._headers[typ] = segment
        return segment


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
    return _b64url_bytes(data).decode("ascii")


def _b64url_bytes(data: bytes) -> bytes:
    return binascii.b2a_base64(data, newline=False).rstrip(b"=").translate(_URLSAFE)


def _signature_function(key: RSAKey | ECKey, alg: str) -> Callable[[bytes], bytes]:
    """The JWS signature (RFC 7518 §3) of ``alg`` with this private key."""
    if alg not in ASYMMETRIC_ALGORITHMS:
        raise JoseError(f"unsupported signing algorithm {alg}")
    try:
        private = key.get_op_key("sign")
    except _LibraryError as exc:
        raise JoseError(f"the key cannot sign: {_describe(exc)}") from None
    hash_alg = _SIGNATURE_HASHES[alg[2:]]
    if alg.startswith(("RS", "PS")) and isinstance(private, rsa.RSAPrivateKey):
        return _rsa_signature(private, alg, hash_alg)
    curve = _CURVE_CLASSES.get(alg)
    if (
        curve is not None
        and isinstance(private, ec.EllipticCurvePrivateKey)
        and isinstance(private.curve, curve)
    ):
        return _ecdsa_signature(private, hash_alg)
    raise JoseError(f"a {key.key_type} key cannot sign {alg}")


def _rsa_signature(
    private: rsa.RSAPrivateKey, alg: str, hash_alg: hashes.HashAlgorithm
) -> Callable[[bytes], bytes]:
    scheme: padding.AsymmetricPadding = (
        padding.PKCS1v15()
        if alg.startswith("RS")
        else padding.PSS(mgf=padding.MGF1(hash_alg), salt_length=hash_alg.digest_size)
    )

    def sign(message: bytes) -> bytes:
        return private.sign(message, scheme, hash_alg)

    return sign


def _ecdsa_signature(
    private: ec.EllipticCurvePrivateKey, hash_alg: hashes.HashAlgorithm
) -> Callable[[bytes], bytes]:
    """JWS wants R || S, each padded to the curve's byte length, not cryptography's DER."""
    size = (private.curve.key_size + 7) // 8
    scheme = ec.ECDSA(hash_alg)

    def sign(message: bytes) -> bytes:
        r, s = decode_dss_signature(private.sign(message, scheme))
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")

    return sign


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
