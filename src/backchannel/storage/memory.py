"""The reference implementation of every storage port, in process memory.

It defines the semantics the SQL implementation must match (the contract suite runs on both).
Every object handed in or out is copied, so callers can never mutate stored state.
"""

from __future__ import annotations

from collections.abc import Sequence
from copy import deepcopy
from dataclasses import replace
from typing import TypeVar

from backchannel.protocol.model import (
    AuthRequest,
    Client,
    Consent,
    DeliveryMode,
    OutboxEntry,
    RefreshToken,
    RequestState,
    SigningKey,
    TimelineEvent,
    User,
)
from backchannel.protocol.ports import (
    AuthRequestStore,
    ClientStore,
    DuplicateError,
    KeyStore,
    LookupKind,
    MissingError,
    OutboxStore,
    ReplayGuard,
    TokenStore,
    UserDirectory,
    UserLookup,
)
from backchannel.storage.memory_devices import MemoryDeviceStore
from backchannel.storage.memory_outbox import MemoryOutboxStore

T = TypeVar("T")

# The fields a transition may change; everything else is fixed when the request is created.
MUTABLE_REQUEST_FIELDS = (
    "state",
    "interval",
    "last_polled_at",
    "decided_at",
    "auth_time",
    "acr",
    "amr",
)
LOOKUP_KINDS: tuple[LookupKind, ...] = ("username", "email", "phone")


def _copy(value: T) -> T:
    return deepcopy(value)


class MemoryClientStore:
    def __init__(self) -> None:
        self._clients: dict[str, Client] = {}

    async def get_client(self, client_id: str) -> Client | None:
        client = self._clients.get(client_id)
        return _copy(client) if client is not None else None

    async def add_client(self, client: Client) -> None:
        if client.client_id in self._clients:
            raise DuplicateError(f"client {client.client_id!r} exists")
        self._clients[client.client_id] = _copy(client)

    async def update_client(self, client: Client) -> None:
        if client.client_id not in self._clients:
            raise MissingError(f"no client {client.client_id!r}")
        self._clients[client.client_id] = _copy(client)

    async def remove_client(self, client_id: str) -> bool:
        return self._clients.pop(client_id, None) is not None

    async def list_clients(self) -> list[Client]:
        return [_copy(self._clients[key]) for key in sorted(self._clients)]


class MemoryUserDirectory:
    def __init__(self) -> None:
        self._users: dict[str, User] = {}

    async def get_user(self, subject: str) -> User | None:
        user = self._users.get(subject)
        return _copy(user) if user is not None else None

    async def find_user(self, kind: LookupKind, value: str) -> User | None:
        for user in self._users.values():
            if getattr(user, kind) == value:
                return _copy(user)
        return None

    async def find_first(self, lookups: Sequence[UserLookup]) -> User | None:
        for kind, value in lookups:
            found = self.get_user(value) if kind == "subject" else self.find_user(kind, value)
            user = await found
            if user is not None:
                return user
        return None

    async def add_user(self, user: User) -> None:
        if user.subject in self._users:
            raise DuplicateError(f"user {user.subject!r} exists")
        self._check_unique(user)
        self._users[user.subject] = _copy(user)

    async def update_user(self, user: User) -> None:
        if user.subject not in self._users:
            raise MissingError(f"no user {user.subject!r}")
        self._check_unique(user)
        self._users[user.subject] = _copy(user)

    async def remove_user(self, subject: str) -> bool:
        return self._users.pop(subject, None) is not None

    async def list_users(self) -> list[User]:
        return [_copy(self._users[key]) for key in sorted(self._users)]

    async def record_user_code_failure(
        self, subject: str, now: float, max_failures: int, lockout_seconds: float
    ) -> User | None:
        user = self._users.get(subject)
        if user is None:
            return None
        user.user_code_failures += 1
        if user.user_code_failures >= max_failures:
            user.user_code_failures = 0
            user.user_code_locked_until = now + lockout_seconds
        return _copy(user)

    async def reset_user_code_failures(self, subject: str) -> None:
        user = self._users.get(subject)
        if user is not None:
            user.user_code_failures = 0

    def _check_unique(self, user: User) -> None:
        for other in self._users.values():
            if other.subject == user.subject:
                continue
            for kind in LOOKUP_KINDS:
                value = getattr(user, kind)
                if value is not None and getattr(other, kind) == value:
                    raise DuplicateError(f"another user has this {kind}")


class MemoryAuthRequestStore:
    def __init__(
        self,
        tokens: MemoryTokenStore,
        outbox: MemoryOutboxStore | None = None,
        devices: MemoryDeviceStore | None = None,
    ) -> None:
        self._requests: dict[str, AuthRequest] = {}
        self._timelines: dict[str, list[TimelineEvent]] = {}
        self._tokens = tokens
        self._outbox = outbox or MemoryOutboxStore()
        self._devices = devices or MemoryDeviceStore()
        self._outbox.attach_timeline(self._append_events)

    async def create_request(
        self,
        request: AuthRequest,
        event: TimelineEvent,
        deliveries: Sequence[OutboxEntry] = (),
        consent: Consent | None = None,
    ) -> None:
        if request.id_hash in self._requests:
            raise DuplicateError("auth request exists")
        self._outbox.check_new(deliveries)
        if consent is not None:
            self._devices.check_new_consent(consent)
        self._requests[request.id_hash] = _copy(request)
        self._timelines[request.id_hash] = [_copy(event)]
        self._outbox.add_now(deliveries)
        if consent is not None:
            self._devices.add_consent_now(consent)

    async def get_request(self, id_hash: str) -> AuthRequest | None:
        request = self._requests.get(id_hash)
        return _copy(request) if request is not None else None

    async def transition(
        self,
        request: AuthRequest,
        expected: RequestState,
        event: TimelineEvent,
        deliveries: Sequence[OutboxEntry] = (),
    ) -> bool:
        stored = self._requests.get(request.id_hash)
        if stored is None or stored.state != expected:
            return False
        self._outbox.check_new(deliveries)
        self._write_mutable(stored, request)
        self._timelines[request.id_hash].append(_copy(event))
        self._outbox.add_now(deliveries)
        return True

    async def record_poll(
        self,
        request: AuthRequest,
        previous_poll: float | None,
        event: TimelineEvent | None,
    ) -> bool:
        stored = self._requests.get(request.id_hash)
        if stored is None or stored.last_polled_at != previous_poll:
            return False
        stored.last_polled_at = request.last_polled_at
        stored.interval = request.interval
        if event is not None:
            self._timelines[request.id_hash].append(_copy(event))
        return True

    async def redeem(
        self,
        request: AuthRequest,
        event: TimelineEvent,
        refresh_token: RefreshToken | None,
        deliveries: Sequence[OutboxEntry] = (),
    ) -> bool:
        stored = self._requests.get(request.id_hash)
        if stored is None or stored.state != RequestState.APPROVED:
            return False
        if refresh_token is not None:
            self._tokens.check_new(refresh_token)
        self._outbox.check_new(deliveries)
        self._outbox.add_now(deliveries)
        self._write_mutable(stored, replace(request, state=RequestState.REDEEMED))
        self._timelines[request.id_hash].append(_copy(event))
        if refresh_token is not None:
            await self._tokens.add_refresh_token(refresh_token)
        return True

    async def add_event(self, id_hash: str, event: TimelineEvent) -> None:
        timeline = self._timelines.get(id_hash)
        if timeline is None:
            raise MissingError("no such auth request")
        timeline.append(_copy(event))

    async def timeline(self, id_hash: str) -> list[TimelineEvent]:
        return _copy(self._timelines.get(id_hash, []))

    async def list_requests(
        self, state: RequestState | None = None, limit: int = 100
    ) -> list[AuthRequest]:
        chosen = [r for r in self._requests.values() if state is None or r.state == state]
        return _copy(_newest_first(chosen)[:limit])

    async def find_by_ref(self, ref: str) -> list[AuthRequest]:
        chosen = [r for r in self._requests.values() if r.id_hash.startswith(ref)]
        return _copy(_newest_first(chosen))

    async def expire_overdue(
        self, now: float, limit: int = 1000, modes: Sequence[DeliveryMode] | None = None
    ) -> int:
        overdue = sorted(
            (
                r
                for r in self._requests.values()
                if r.state == RequestState.PENDING
                and r.expires_at <= now
                and (modes is None or r.delivery_mode in modes)
            ),
            key=lambda r: (r.expires_at, r.id_hash),
        )[:limit]
        for request in overdue:
            request.state = RequestState.EXPIRED
            self._timelines[request.id_hash].append(TimelineEvent(at=now, kind="expired"))
        return len(overdue)

    async def list_overdue(
        self, now: float, mode: DeliveryMode, limit: int = 100
    ) -> list[AuthRequest]:
        overdue = [
            r
            for r in self._requests.values()
            if r.state == RequestState.PENDING and r.expires_at <= now and r.delivery_mode == mode
        ]
        return _copy(sorted(overdue, key=lambda r: (r.expires_at, r.id_hash))[:limit])

    async def list_unpushed(self, decided_before: float, limit: int = 100) -> list[AuthRequest]:
        unpushed = [
            r
            for r in self._requests.values()
            if r.state == RequestState.APPROVED
            and r.delivery_mode == DeliveryMode.PUSH
            and (r.decided_at is None or r.decided_at < decided_before)
        ]
        unpushed.sort(key=lambda r: (r.decided_at is not None, r.decided_at or 0.0, r.id_hash))
        return _copy(unpushed[:limit])

    def _append_events(self, id_hash: str, events: Sequence[TimelineEvent]) -> None:
        self._timelines.setdefault(id_hash, []).extend(_copy(list(events)))

    async def count_pending(self, subject: str, now: float) -> int:
        return sum(
            1
            for r in self._requests.values()
            if r.subject == subject and r.state == RequestState.PENDING and r.expires_at > now
        )

    @staticmethod
    def _write_mutable(stored: AuthRequest, source: AuthRequest) -> None:
        for name in MUTABLE_REQUEST_FIELDS:
            setattr(stored, name, _copy(getattr(source, name)))


def _newest_first(requests: list[AuthRequest]) -> list[AuthRequest]:
    return sorted(requests, key=lambda r: (r.created_at, r.id_hash), reverse=True)


class MemoryTokenStore:
    def __init__(self) -> None:
        self._refresh: dict[str, RefreshToken] = {}
        self._revoked_access: dict[str, float] = {}

    def check_new(self, token: RefreshToken) -> None:
        if token.token_hash in self._refresh:
            raise DuplicateError("refresh token exists")

    async def add_refresh_token(self, token: RefreshToken) -> None:
        self.check_new(token)
        self._refresh[token.token_hash] = _copy(token)

    async def get_refresh_token(self, token_hash: str) -> RefreshToken | None:
        token = self._refresh.get(token_hash)
        return _copy(token) if token is not None else None

    async def rotate_refresh_token(self, old_hash: str, now: float, new: RefreshToken) -> bool:
        old = self._refresh.get(old_hash)
        if old is None or old.rotated_at is not None or old.revoked_at is not None:
            return False
        self.check_new(new)
        old.rotated_at = now
        self._refresh[new.token_hash] = _copy(new)
        return True

    async def revoke_refresh_token(self, token_hash: str, now: float) -> bool:
        """True when this call revoked the token (it existed and was not revoked yet)."""
        token = self._refresh.get(token_hash)
        if token is None or token.revoked_at is not None:
            return False
        token.revoked_at = now
        return True

    async def revoke_family(self, family_id: str, now: float) -> int:
        revoked = 0
        for token in self._refresh.values():
            if token.family_id == family_id and token.revoked_at is None:
                token.revoked_at = now
                revoked += 1
        return revoked

    async def revoke_access_token(self, jti: str, expires_at: float) -> None:
        self._revoked_access.setdefault(jti, expires_at)

    async def is_access_token_revoked(self, jti: str) -> bool:
        return jti in self._revoked_access


class MemoryReplayGuard:
    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    async def remember(self, key: str, expires_at: float, now: float) -> bool:
        previous = self._seen.get(key)
        if previous is not None and previous > now:
            return False
        self._seen[key] = expires_at
        return True


class MemoryKeyStore:
    def __init__(self) -> None:
        self._keys: dict[str, SigningKey] = {}

    async def list_keys(self) -> list[SigningKey]:
        return _copy(sorted(self._keys.values(), key=lambda k: (k.created_at, k.kid)))

    async def add_key(self, key: SigningKey) -> None:
        if key.kid in self._keys:
            raise DuplicateError(f"key {key.kid!r} exists")
        self._keys[key.kid] = _copy(key)

    async def update_key(self, key: SigningKey) -> None:
        if key.kid not in self._keys:
            raise MissingError(f"no key {key.kid!r}")
        self._keys[key.kid] = _copy(key)


class MemoryStorage:
    """Everything in dicts: for tests, demos and benchmarks of the protocol layer."""

    def __init__(self) -> None:
        self.clients: ClientStore = MemoryClientStore()
        self.users: UserDirectory = MemoryUserDirectory()
        tokens = MemoryTokenStore()
        self.tokens: TokenStore = tokens
        outbox = MemoryOutboxStore()
        self.outbox: OutboxStore = outbox
        # The request store writes a new request's consent into this device store.
        self.devices: MemoryDeviceStore = MemoryDeviceStore()
        self.requests: AuthRequestStore = MemoryAuthRequestStore(tokens, outbox, self.devices)
        self.replay: ReplayGuard = MemoryReplayGuard()
        self.keys: KeyStore = MemoryKeyStore()

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None
