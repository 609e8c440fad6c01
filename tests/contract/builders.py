"""Model objects with sensible defaults for the contract suite."""

from __future__ import annotations

import secrets
from typing import Any

from backchannel.protocol.model import (
    AuthMethod,
    AuthRequest,
    Client,
    DeliveryMode,
    RefreshToken,
    SigningKey,
    TimelineEvent,
    User,
)

T0 = 1_800_000_000.0


def client(client_id: str = "client-1", **overrides: Any) -> Client:
    values: dict[str, Any] = {
        "client_id": client_id,
        "name": "Call centre",
        "token_endpoint_auth_method": AuthMethod.PRIVATE_KEY_JWT,
        "secret_hash": "hmac:00",
        "delivery_mode": DeliveryMode.PING,
        "notification_endpoint": "https://rp.example.test/cb",
        "jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": "x", "y": "y"}]},
        "user_code_parameter": True,
        "request_signing_alg": "ES256",
        "scopes": ("openid", "profile"),
        "hint_token_issuers": {"https://idp.example.test": {"keys": []}},
        "authorization_details_types": ("payment_initiation",),
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(overrides)
    return Client(**values)


def user(subject: str = "user-1", **overrides: Any) -> User:
    values: dict[str, Any] = {
        "subject": subject,
        "username": f"name-{subject}",
        "email": f"{subject}@example.test",
        "phone": None,
        "display_name": "Ada",
        "claims": {"given_name": "Ada", "address": {"country": "GB"}},
        "password_hash": "argon2:x",
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(overrides)
    return User(**values)


def request(id_hash: str | None = None, **overrides: Any) -> AuthRequest:
    values: dict[str, Any] = {
        "id_hash": id_hash or f"hmac:{secrets.token_hex(32)}",
        "client_id": "client-1",
        "subject": "user-1",
        "scope": ("openid", "email"),
        "delivery_mode": DeliveryMode.POLL,
        "created_at": T0,
        "expires_at": T0 + 120,
        "interval": 5,
        "acr_values": ("urn:acr:1",),
        "binding_message": "W4SCT",
        "authorization_details": [{"type": "payment_initiation", "amount": "10.00"}],
        "requested_expiry": 120,
    }
    values.update(overrides)
    return AuthRequest(**values)


def event(kind: str = "created", at: float = T0, **detail: Any) -> TimelineEvent:
    return TimelineEvent(at=at, kind=kind, detail=detail)


def refresh_token(token_hash: str | None = None, **overrides: Any) -> RefreshToken:
    values: dict[str, Any] = {
        "token_hash": token_hash or f"hmac:{secrets.token_hex(32)}",
        "family_id": "family-1",
        "client_id": "client-1",
        "subject": "user-1",
        "scope": ("openid",),
        "created_at": T0,
        "expires_at": T0 + 3600,
        "auth_time": T0,
        "acr": "urn:acr:1",
        "amr": ("pwd", "hwk"),
        "authorization_details": [{"type": "payment_initiation"}],
    }
    values.update(overrides)
    return RefreshToken(**values)


def signing_key(kid: str = "key-1", **overrides: Any) -> SigningKey:
    values: dict[str, Any] = {
        "kid": kid,
        "alg": "ES256",
        "public_jwk": {"kty": "EC", "crv": "P-256", "x": "x", "y": "y", "kid": kid},
        "private_jwk_encrypted": "enc:abc",
        "created_at": T0,
        "sign_from": T0,
    }
    values.update(overrides)
    return SigningKey(**values)
