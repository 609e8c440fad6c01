"""Plain dataclasses the protocol works on. No behaviour beyond small derived properties.

Times are POSIX seconds as floats (the injected clock's unit). Hashes of secrets are
strings such as ``sha256:...`` or ``argon2:...`` produced by ``protocol.secrets``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

JSON = dict[str, Any]


class DeliveryMode(StrEnum):
    POLL = "poll"
    PING = "ping"
    PUSH = "push"


class AuthMethod(StrEnum):
    CLIENT_SECRET_BASIC = "client_secret_basic"
    CLIENT_SECRET_POST = "client_secret_post"
    PRIVATE_KEY_JWT = "private_key_jwt"


class RequestState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"
    REDEEMED = "redeemed"


@dataclass(slots=True)
class Client:
    client_id: str
    name: str
    token_endpoint_auth_method: AuthMethod = AuthMethod.CLIENT_SECRET_BASIC
    secret_hash: str | None = None
    delivery_mode: DeliveryMode = DeliveryMode.POLL
    notification_endpoint: str | None = None
    logo_uri: str | None = None
    policy_uri: str | None = None
    jwks: JSON | None = None
    jwks_uri: str | None = None
    user_code_parameter: bool = False
    request_signing_alg: str | None = None
    id_token_signed_response_alg: str = "RS256"
    scopes: tuple[str, ...] = ("openid",)
    # login_hint_token issuers this client trusts: issuer -> JWKS (public keys).
    hint_token_issuers: dict[str, JSON] = field(default_factory=dict)
    authorization_details_types: tuple[str, ...] = ()
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(slots=True)
class User:
    subject: str
    username: str
    email: str | None = None
    phone: str | None = None
    display_name: str | None = None
    claims: JSON = field(default_factory=dict)
    password_hash: str | None = None
    user_code_hash: str | None = None
    user_code_failures: int = 0
    user_code_locked_until: float = 0.0
    created_at: float = 0.0
    updated_at: float = 0.0


@dataclass(slots=True)
class AuthRequest:
    """One backchannel authentication request. ``id_hash`` is SHA-256 of the auth_req_id."""

    id_hash: str
    client_id: str
    subject: str
    scope: tuple[str, ...]
    delivery_mode: DeliveryMode
    created_at: float
    expires_at: float
    interval: int
    state: RequestState = RequestState.PENDING
    acr_values: tuple[str, ...] = ()
    binding_message: str | None = None
    client_notification_token: str | None = None
    authorization_details: list[JSON] | None = None
    requested_expiry: int | None = None
    last_polled_at: float | None = None
    decided_at: float | None = None
    auth_time: float | None = None
    acr: str | None = None
    amr: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """A short reference for operators and logs; it grants nothing."""
        return self.id_hash[:12]


@dataclass(slots=True, frozen=True)
class TimelineEvent:
    at: float
    kind: str
    detail: JSON = field(default_factory=dict)


@dataclass(slots=True)
class SigningKey:
    kid: str
    alg: str
    public_jwk: JSON
    private_jwk_encrypted: str
    created_at: float
    sign_from: float
    # None while the key may still sign; set when a newer key takes over.
    sign_until: float | None = None
    # None while published indefinitely; otherwise the end of the grace period.
    publish_until: float | None = None

    def signs_at(self, now: float) -> bool:
        return self.sign_from <= now and (self.sign_until is None or now < self.sign_until)

    def published_at(self, now: float) -> bool:
        return self.publish_until is None or now < self.publish_until


@dataclass(slots=True)
class RefreshToken:
    token_hash: str
    family_id: str
    client_id: str
    subject: str
    scope: tuple[str, ...]
    created_at: float
    expires_at: float
    auth_time: float
    acr: str | None = None
    amr: tuple[str, ...] = ()
    authorization_details: list[JSON] | None = None
    # Set when this token was exchanged for a newer one; presenting it again is reuse.
    rotated_at: float | None = None
    revoked_at: float | None = None


@dataclass(slots=True, frozen=True)
class TokenSet:
    access_token: str
    expires_in: int
    id_token: str
    refresh_token: str | None = None
    scope: tuple[str, ...] = ()
    authorization_details: list[JSON] | None = None
    token_type: str = "Bearer"

    def response(self) -> JSON:
        body: JSON = {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
            "id_token": self.id_token,
            "scope": " ".join(self.scope),
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        if self.authorization_details is not None:
            body["authorization_details"] = self.authorization_details
        return body
