"""The interfaces the core needs. Storage implementations live in ``backchannel.storage``
and every one of them passes the same contract suite (``tests/contract``).

Rule: a state change of an AuthRequest is a *conditional* update (``WHERE state = expected``)
so it happens exactly once even with many processes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from backchannel.protocol.model import (
    AuthRequest,
    Client,
    Consent,
    DeliveryMode,
    Device,
    EnrolmentCode,
    OutboxEntry,
    Pause,
    RefreshToken,
    Report,
    RequestState,
    SigningKey,
    TimelineEvent,
    User,
)

LookupKind = Literal["username", "email", "phone"]
# A lookup by subject or by one (normalised) identifier.
UserLookup = tuple[LookupKind | Literal["subject"], str]


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
    async def find_first(self, lookups: Sequence[UserLookup]) -> User | None:
        """The user the earliest of ``lookups`` finds, in one query where the backend can
        (the result equals trying them one by one, in order)."""
        ...

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
    async def create_request(
        self,
        request: AuthRequest,
        event: TimelineEvent,
        deliveries: Sequence[OutboxEntry] = (),
        consent: Consent | None = None,
    ) -> None:
        """Store a new request with its first event, enqueueing ``deliveries`` (device
        notices) and storing ``consent`` (what its devices show; ``DeviceStore.get_consent``
        reads it) in the same transaction. ``DuplicateError``, with nothing written, when
        the id, the consent or an entry exists."""
        ...

    async def get_request(self, id_hash: str) -> AuthRequest | None: ...
    async def transition(
        self,
        request: AuthRequest,
        expected: RequestState,
        event: TimelineEvent,
        deliveries: Sequence[OutboxEntry] = (),
    ) -> bool:
        """Write ``request``'s mutable fields only if the stored state is still ``expected``,
        enqueueing ``deliveries`` in the same transaction. Returns False (and writes
        nothing, deliveries included) when another process got there first."""
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
        self,
        request: AuthRequest,
        event: TimelineEvent,
        refresh_token: RefreshToken | None,
        deliveries: Sequence[OutboxEntry] = (),
    ) -> bool:
        """approved -> redeemed exactly once, storing the refresh token and enqueueing
        ``deliveries`` in the same transaction. False when the request was not approved
        any more."""
        ...

    async def add_event(self, id_hash: str, event: TimelineEvent) -> None: ...
    async def timeline(self, id_hash: str) -> list[TimelineEvent]: ...
    async def list_requests(
        self, state: RequestState | None = None, limit: int = 100
    ) -> list[AuthRequest]:
        """Newest first."""
        ...

    async def find_by_ref(self, ref: str) -> list[AuthRequest]:
        """Requests whose id_hash starts with ``prefix`` (operators type short refs)."""
        ...

    async def expire_overdue(
        self, now: float, limit: int = 1000, modes: Sequence[DeliveryMode] | None = None
    ) -> int:
        """Mark up to ``limit`` pending requests past ``expires_at`` as expired, with an
        ``expired`` timeline event each. Returns how many changed. ``modes`` restricts the
        sweep to those delivery modes (push requests are expired one by one, with their
        error delivery, by ``protocol.ciba.delivery``)."""
        ...

    async def list_overdue(
        self, now: float, mode: DeliveryMode, limit: int = 100
    ) -> list[AuthRequest]:
        """Pending requests of one delivery mode past ``expires_at``, oldest deadline first."""
        ...

    async def list_unpushed(self, decided_before: float, limit: int = 100) -> list[AuthRequest]:
        """Approved push-mode requests decided before ``decided_before`` (or at an unknown
        time), expired or not: their tokens never went out. Oldest decision first."""
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


class FetchError(Exception):
    """An outbound fetch (e.g. a client's ``jwks_uri``) failed or was refused (SSRF guard).
    The message is safe to show."""


class JwksFetcher(Protocol):
    async def fetch(self, url: str, refresh: bool = False) -> dict[str, object]:
        """The JWK set at ``url``, possibly cached. ``refresh=True`` asks for a fresh copy
        (a JWT named an unknown ``kid``); an implementation may rate-limit that. Raises
        ``FetchError`` on failure."""
        ...


class KeyStore(Protocol):
    async def list_keys(self) -> list[SigningKey]: ...
    async def add_key(self, key: SigningKey) -> None: ...
    async def update_key(self, key: SigningKey) -> None: ...


class OutboxStore(Protocol):
    """Durable outgoing deliveries (ping, push, device notices). Entries caused by a request
    state change are written by ``AuthRequestStore.transition``/``redeem`` in the same
    transaction; ``enqueue`` is for the rest.

    A worker ``claim_due``s entries: each comes back leased to ``owner`` until
    ``lease_until``; no other owner gets it before the lease ends. The worker then ends the
    attempt with exactly one of ``complete``/``reschedule``/``fail``, which count the
    attempt, drop the lease, and append ``events`` to the request's timeline in the same
    transaction. They return False (writing nothing) when ``owner`` lost the lease.
    """

    async def enqueue(self, entries: Sequence[OutboxEntry]) -> None: ...
    async def get_entry(self, entry_id: str) -> OutboxEntry | None: ...
    async def list_entries(self, id_hash: str | None = None, limit: int = 100) -> list[OutboxEntry]:
        """Oldest first; only those of one request when ``id_hash`` is given."""
        ...

    async def claim_due(
        self, now: float, owner: str, lease_seconds: float, limit: int
    ) -> list[OutboxEntry]:
        """Lease up to ``limit`` pending entries whose ``next_attempt_at`` has come and
        whose lease (if any) has ended."""
        ...

    async def complete(
        self, entry_id: str, owner: str, now: float, events: Sequence[TimelineEvent] = ()
    ) -> bool: ...
    async def reschedule(
        self,
        entry_id: str,
        owner: str,
        now: float,
        next_attempt_at: float,
        error: str,
        events: Sequence[TimelineEvent] = (),
    ) -> bool: ...
    async def fail(
        self,
        entry_id: str,
        owner: str,
        now: float,
        error: str,
        events: Sequence[TimelineEvent] = (),
    ) -> bool: ...

    async def release(self, owner: str, now: float) -> None:
        """A stopping worker gives up the right to claim that it holds beyond its entries
        (SQLite's single worker lease), so that the next worker, such as the restarted
        server, claims at once instead of after ``outbox.lease_seconds``."""
        ...


class DeviceStore(Protocol):
    """Authentication devices, enrolment codes, consents, notices, reports and pauses
    (``backchannel.authenticator``)."""

    async def add_device(self, device: Device) -> None: ...
    async def get_device(self, device_id: str) -> Device | None: ...
    async def find_device_by_token(self, token_hash: str) -> Device | None: ...
    async def list_devices(self, subject: str | None = None) -> list[Device]:
        """Oldest first; revoked ones included."""
        ...

    async def update_device(self, device: Device) -> None:
        """Store name, last_seen_at, credentials and push subscription (not revocation)."""
        ...

    async def touch_device(self, device_id: str, seen_at: float) -> None:
        """Store when the device last called (nothing for an unknown one). A heartbeat:
        what a store keeps in memory of a user's devices may show an earlier time."""
        ...

    async def revoke_device(self, device_id: str, now: float) -> bool:
        """False when unknown or already revoked."""
        ...

    async def add_enrolment_code(self, code: EnrolmentCode) -> None: ...
    async def use_enrolment_code(self, code_hash: str, now: float) -> EnrolmentCode | None:
        """Mark the code used, atomically and only once, if it exists, is unused and has
        not expired. Returns the used code, or None."""
        ...

    async def add_consent(self, consent: Consent) -> None: ...
    async def get_consent(self, id_hash: str) -> Consent | None: ...
    async def list_consents(self, subject: str, created_after: float) -> list[Consent]:
        """A user's consents created after ``created_after``, newest first (the inbox)."""
        ...

    async def add_notice(self, subject: str, at: float) -> None: ...
    async def count_notices(self, subject: str, since: float) -> int: ...

    async def add_report(self, report: Report) -> None: ...
    async def list_reports(self, limit: int = 100) -> list[Report]:
        """Newest first."""
        ...

    async def set_pause(self, pause: Pause) -> None:
        """Create or extend the pause of one client for one user."""
        ...

    async def get_pause(self, client_id: str, subject: str) -> Pause | None: ...

    async def pause_and_devices(
        self, client_id: str, subject: str
    ) -> tuple[Pause | None, list[Device]]:
        """``get_pause(client_id, subject)`` and ``list_devices(subject)`` at once: what
        every bc-authorize reads (one statement where each read is a round trip)."""
        ...

    async def get_secret(self, name: str) -> str | None: ...
    async def add_secret(self, name: str, value: str) -> bool:
        """Store a server secret (e.g. the encrypted VAPID key) once. False when one with
        that name exists already (another process won): re-read it."""
        ...


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
    @property
    def outbox(self) -> OutboxStore: ...
    @property
    def devices(self) -> DeviceStore: ...

    async def ping(self) -> bool:
        """True when the backing store answers (readiness)."""
        ...

    async def close(self) -> None: ...
