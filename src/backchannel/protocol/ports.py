"""The interfaces the core needs. Storage implementations live in ``backchannel.storage``
and every one of them passes the same contract suite (``tests/contract``).

Rule: a state change of an AuthRequest is a *conditional* update (``WHERE state = expected``)
so it happens exactly once even with many processes.
"""

from __future__ import annotations

from typing import Literal, Protocol

from backchannel.protocol.model import (
    AuthRequest,
    Client,
    RefreshToken,
    RequestState,
    SigningKey,
    TimelineEvent,
    User,
)

LookupKind = Literal["username", "email", "phone"]


class DuplicateError(Exception):
    """An object with the same identifier (or unique attribute) already exists."""


class MissingError(Exception):
    """The object to update does not exist."""


class Clock(Protocol):
    def now(self) -> float:
        """POSIX seconds."""
        ...


class TokenSource(Protocol):
    def token(self, nbytes: int = 32) -> str:
        """A URL-safe random string carrying ``nbytes`` bytes of entropy."""
        ...


class ClientStore(Protocol):
    async def get_client(self, client_id: str) -> Client | None: ...
    async def add_client(self, client: Client) -> None: ...
    async def update_client(self, client: Client) -> None: ...
    async def remove_client(self, client_id: str) -> bool: ...
    async def list_clients(self) -> list[Client]: ...


class UserDirectory(Protocol):
    """Where users come from. ``find_user`` receives a value already normalised by
    ``protocol.users.normalise``; implementations compare exactly."""

    async def get_user(self, subject: str) -> User | None: ...
    async def find_user(self, kind: LookupKind, value: str) -> User | None: ...
    async def add_user(self, user: User) -> None: ...
    async def update_user(self, user: User) -> None: ...
    async def remove_user(self, subject: str) -> bool: ...
    async def list_users(self) -> list[User]: ...
    async def record_user_code_failure(
        self, subject: str, now: float, max_failures: int, lockout_seconds: float
    ) -> User | None:
        """Atomically count one wrong user code; lock when the count reaches the maximum
        (the counter then restarts). Returns the updated user."""
        ...

    async def reset_user_code_failures(self, subject: str) -> None: ...


class AuthRequestStore(Protocol):
    async def create_request(self, request: AuthRequest, event: TimelineEvent) -> None: ...
    async def get_request(self, id_hash: str) -> AuthRequest | None: ...
    async def transition(
        self, request: AuthRequest, expected: RequestState, event: TimelineEvent
    ) -> bool:
        """Write ``request``'s mutable fields only if the stored state is still ``expected``.
        Returns False (and writes nothing) when another process got there first."""
        ...

    async def record_poll(
        self,
        request: AuthRequest,
        previous_poll: float | None,
        event: TimelineEvent | None,
    ) -> bool:
        """Store ``last_polled_at`` and ``interval`` only if the stored ``last_polled_at``
        still equals ``previous_poll`` (two overlapping polls: one wins)."""
        ...

    async def redeem(
        self, request: AuthRequest, event: TimelineEvent, refresh_token: RefreshToken | None
    ) -> bool:
        """approved -> redeemed exactly once, storing the refresh token in the same
        transaction. False when the request was not approved any more."""
        ...

    async def add_event(self, id_hash: str, event: TimelineEvent) -> None: ...
    async def timeline(self, id_hash: str) -> list[TimelineEvent]: ...
    async def list_requests(
        self, state: RequestState | None = None, limit: int = 100
    ) -> list[AuthRequest]:
        """Newest first."""
        ...

    async def find_by_ref(self, ref: str) -> list[AuthRequest]:
        """Requests whose id_hash starts with ``ref`` (operators type short refs)."""
        ...

    async def expire_overdue(self, now: float, limit: int = 1000) -> int:
        """Mark up to ``limit`` pending requests past ``expires_at`` as expired, with an
        ``expired`` timeline event each. Returns how many changed."""
        ...

    async def count_pending(self, subject: str, now: float) -> int: ...


class TokenStore(Protocol):
    async def add_refresh_token(self, token: RefreshToken) -> None: ...
    async def get_refresh_token(self, token_hash: str) -> RefreshToken | None: ...
    async def rotate_refresh_token(self, old_hash: str, now: float, new: RefreshToken) -> bool:
        """Mark the old token rotated and store the new one, only if the old one was
        neither rotated nor revoked. False means reuse (or a lost race)."""
        ...

    async def revoke_refresh_token(self, token_hash: str, now: float) -> bool: ...
    async def revoke_family(self, family_id: str, now: float) -> int: ...
    async def revoke_access_token(self, jti: str, expires_at: float) -> None: ...
    async def is_access_token_revoked(self, jti: str) -> bool: ...


class ReplayGuard(Protocol):
    async def remember(self, key: str, expires_at: float, now: float) -> bool:
        """Record a one-time value (a JWT ``jti``). False if it was seen and has not
        expired yet: the caller must refuse the replay."""
        ...


class KeyStore(Protocol):
    async def list_keys(self) -> list[SigningKey]: ...
    async def add_key(self, key: SigningKey) -> None: ...
    async def update_key(self, key: SigningKey) -> None: ...


class OutboxStore(Protocol):
    """Durable outgoing deliveries (ping, push, device notices). Owned by the outbox work:
    methods are added here as ``backchannel.outbox`` needs them."""


class DeviceStore(Protocol):
    """Authentication devices, enrolment codes, notices and reports. Owned by the
    authenticator work: methods are added here as ``backchannel.authenticator`` needs them."""


class Storage(Protocol):
    """Everything the core persists, behind one object built by ``app.compose``."""

    # Read-only members, so an implementation may declare narrower concrete types.
    @property
    def clients(self) -> ClientStore: ...
    @property
    def users(self) -> UserDirectory: ...
    @property
    def requests(self) -> AuthRequestStore: ...
    @property
    def tokens(self) -> TokenStore: ...
    @property
    def replay(self) -> ReplayGuard: ...
    @property
    def keys(self) -> KeyStore: ...

    async def ping(self) -> bool:
        """True when the backing store answers (readiness)."""
        ...

    async def close(self) -> None: ...
