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
    # Authenticator policy: offer three codes, one the binding_message, to pick from; and
    # require WebAuthn user verification for every approval.
    binding_code_choice: bool = False
    require_user_verification: bool = False


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
    # Ping/push only: the auth_req_id and client_notification_token, sealed with the
    # delivery key (``protocol.sealed``); the plain fields above are never stored for them.
    delivery_secret: str | None = None

    @property
    def ref(self) -> str:
        """A short reference for operators and logs (the start of the stored hash, without
        its scheme); it grants nothing."""
        return self.id_hash.partition(":")[2][:10] or self.id_hash[:10]


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


class OutboxState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(slots=True)
class OutboxEntry:
    """One outgoing delivery. ``payload`` is sealed (``protocol.sealed``): it holds the body
    and the bearer token. ``kind`` is "ping", "push" or "push_error" (device notices may
    add more). No attempt is made after ``deliver_until`` (None: no limit)."""

    id: str
    kind: str
    url: str
    payload: str
    created_at: float
    next_attempt_at: float
    id_hash: str | None = None
    client_id: str | None = None
    deliver_until: float | None = None
    state: OutboxState = OutboxState.PENDING
    attempts: int = 0
    lease_owner: str | None = None
    lease_until: float | None = None
    updated_at: float = 0.0
    last_error: str | None = None


@dataclass(slots=True, frozen=True)
class WebAuthnCredential:
    """A WebAuthn credential registered by a device (binary values base64url)."""

    credential_id: str
    public_key: str
    sign_count: int = 0
    transports: tuple[str, ...] = ()


@dataclass(slots=True, frozen=True)
class PushSubscription:
    """A browser's Web Push subscription (``PushSubscription.toJSON()``)."""

    endpoint: str
    p256dh: str
    auth: str


@dataclass(slots=True)
class Device:
    """An enrolled authentication device. ``token_hash`` is ``hasher.fast`` of its bearer
    token; ``public_jwk`` (EC P-256) verifies the decisions it signs."""

    device_id: str
    subject: str
    name: str
    public_jwk: JSON
    token_hash: str
    created_at: float
    last_seen_at: float | None = None
    revoked_at: float | None = None
    credentials: tuple[WebAuthnCredential, ...] = ()
    push: PushSubscription | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(slots=True, frozen=True)
class EnrolmentCode:
    """A one-time enrolment code, stored only as ``hasher.fast(code)``."""

    code_hash: str
    subject: str
    created_at: float
    expires_at: float
    used_at: float | None = None


@dataclass(slots=True, frozen=True)
class Consent:
    """What a device shows for one request, fixed when the request is created. ``content``
    is the exact JSON string shown; ``content_mac`` (keyed hash) detects later tampering."""

    id_hash: str
    subject: str
    content: str
    content_mac: str
    created_at: float
    binding_choices: tuple[str, ...] | None = None


@dataclass(slots=True, frozen=True)
class Report:
    """'This wasn't me': a user reported a request they did not start."""

    client_id: str
    subject: str
    id_hash: str
    device_id: str
    at: float


@dataclass(slots=True, frozen=True)
class Pause:
    """New requests from ``client_id`` for ``subject`` are refused until ``until``."""

    client_id: str
    subject: str
    until: float
