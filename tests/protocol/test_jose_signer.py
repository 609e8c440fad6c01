"""``jose.Signer``: compact JWS for every algorithm we sign with, checked against joserfc and
against ``cryptography`` directly, with the header and payload a verifier expects."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from backchannel.protocol.jose import (
    ASYMMETRIC_ALGORITHMS,
    JoseError,
    Signer,
    generate_private_jwk,
    public_jwk,
)

CLAIMS: dict[str, Any] = {
    "iss": "https://op.example.test",
    "sub": "user-1",
    "aud": "rp-1",
    "iat": 1_800_000_000,
    "exp": 1_800_000_600,
    "auth_time": 1_799_999_990,
    "acr": "urn:acr:2",
    "amr": ["pwd"],
    "authorization_details": [{"type": "payment", "label": "Zürich café ✓", "amount": 12.5}],
}
_HASHES = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}


@pytest.fixture(scope="module")
def private_keys() -> dict[str, dict[str, Any]]:
    """One key per algorithm (RSA keys are slow to make: once per module)."""
    return {alg: generate_private_jwk(alg, f"kid-{alg}") for alg in ASYMMETRIC_ALGORITHMS}


def unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def segments(token: str) -> list[bytes]:
    """Header JSON, payload JSON and signature bytes of a compact JWS."""
    return [unb64(part) for part in token.split(".")]


def joserfc_key(private: dict[str, Any]) -> RSAKey | ECKey:
    return ECKey.import_key(private) if private["kty"] == "EC" else RSAKey.import_key(private)


def verify_with_cryptography(private: dict[str, Any], alg: str, token: str) -> None:
    """Raises ``InvalidSignature`` unless ``token`` verifies under the public half."""
    signing_input, _, encoded = token.rpartition(".")
    signature = unb64(encoded)
    message = signing_input.encode("ascii")
    hash_alg = _HASHES[alg[2:]]
    if alg.startswith("ES"):
        key = ECKey.import_key(public_jwk(private)).public_key
        assert isinstance(key, ec.EllipticCurvePublicKey)
        half = len(signature) // 2
        r, s = int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
        key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hash_alg))
        return
    rsa_key = RSAKey.import_key(public_jwk(private)).public_key
    assert isinstance(rsa_key, rsa.RSAPublicKey)
    pad: padding.AsymmetricPadding = (
        padding.PKCS1v15()
        if alg.startswith("RS")
        else padding.PSS(mgf=padding.MGF1(hash_alg), salt_length=hash_alg.digest_size)
    )
    rsa_key.verify(signature, message, pad, hash_alg)


@pytest.mark.parametrize("alg", ASYMMETRIC_ALGORITHMS)
def test_every_algorithm_verifies_with_joserfc(
    private_keys: dict[str, dict[str, Any]], alg: str
) -> None:
    private = private_keys[alg]
    token = Signer(private, alg).sign(dict(CLAIMS), typ="at+jwt")
    keys = KeySet.import_key_set({"keys": [public_jwk(private)]})  # type: ignore[arg-type]
    decoded = jwt.decode(token, keys, algorithms=[alg])
    assert dict(decoded.header) == {"typ": "at+jwt", "alg": alg, "kid": f"kid-{alg}"}
    assert dict(decoded.claims) == CLAIMS


@pytest.mark.parametrize("alg", ASYMMETRIC_ALGORITHMS)
def test_every_algorithm_verifies_with_cryptography(
    private_keys: dict[str, dict[str, Any]], alg: str
) -> None:
    private = private_keys[alg]
    token = Signer(private, alg).sign(dict(CLAIMS))
    verify_with_cryptography(private, alg, token)
    header, _, signature = token.split(".")
    with pytest.raises(InvalidSignature):
        verify_with_cryptography(private, alg, f"{header}.e30.{signature}")  # payload {}


@pytest.mark.parametrize("alg", ASYMMETRIC_ALGORITHMS)
def test_header_and_payload_are_the_ones_joserfc_writes(
    private_keys: dict[str, dict[str, Any]], alg: str
) -> None:
    """Same header fields in the same order, same payload bytes: only the (randomised)
    PS and ES signatures may differ from what joserfc itself produces."""
    private = private_keys[alg]
    ours = Signer(private, alg).sign(dict(CLAIMS), typ="JWT")
    header = {"alg": alg, "kid": f"kid-{alg}", "typ": "JWT"}
    theirs = jwt.encode(header, dict(CLAIMS), joserfc_key(private), algorithms=[alg])
    assert ours.split(".")[:2] == theirs.split(".")[:2]
    header_json, payload_json, _ = segments(ours)
    assert json.loads(header_json) == {"typ": "JWT", "alg": alg, "kid": f"kid-{alg}"}
    assert payload_json == json.dumps(CLAIMS, ensure_ascii=False, separators=(",", ":")).encode()
    assert "=" not in ours


def test_rs256_token_is_byte_identical_to_joserfc(private_keys: dict[str, dict[str, Any]]) -> None:
    """PKCS#1 v1.5 is deterministic: the whole token must match."""
    private = private_keys["RS256"]
    header = {"alg": "RS256", "kid": "kid-RS256", "typ": "at+jwt"}
    expected = jwt.encode(header, dict(CLAIMS), joserfc_key(private), algorithms=["RS256"])
    assert Signer(private, "RS256").sign(dict(CLAIMS), typ="at+jwt") == expected


@pytest.mark.parametrize(("alg", "size"), [("ES256", 64), ("ES384", 96)])
def test_es_signatures_are_raw_r_and_s(
    private_keys: dict[str, dict[str, Any]], alg: str, size: int
) -> None:
    """RFC 7518 §3.4: R || S, each as long as the curve order, not DER."""
    signer = Signer(private_keys[alg], alg)
    assert {len(segments(signer.sign({"n": n}))[2]) for n in range(20)} == {size}


def test_headers_differ_only_by_typ(private_keys: dict[str, dict[str, Any]]) -> None:
    signer = Signer(private_keys["ES256"], "ES256")
    first = json.loads(segments(signer.sign({"a": 1}, typ="at+jwt"))[0])
    second = json.loads(segments(signer.sign({"a": 1}))[0])
    assert first == {"typ": "at+jwt", "alg": "ES256", "kid": "kid-ES256"}
    assert second == {"typ": "JWT", "alg": "ES256", "kid": "kid-ES256"}


@pytest.mark.parametrize(
    ("key_alg", "alg"),
    [
        ("ES256", "RS256"),
        ("RS256", "ES256"),
        ("ES256", "ES384"),
        ("ES384", "ES256"),
        ("RS256", "HS256"),
    ],
)
def test_a_key_that_cannot_make_the_algorithm_is_refused_at_once(
    private_keys: dict[str, dict[str, Any]], key_alg: str, alg: str
) -> None:
    with pytest.raises(JoseError):
        Signer(private_keys[key_alg], alg)


def test_a_public_key_cannot_sign(private_keys: dict[str, dict[str, Any]]) -> None:
    with pytest.raises(JoseError):
        Signer(public_jwk(private_keys["ES256"]), "ES256")
