"""Helpers for the backchannel endpoint tests: clients with keys, users, signed JWTs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from backchannel.protocol.endpoints import backchannel
from backchannel.protocol.errors import OAuthError
from backchannel.protocol.http import HttpRequest, HttpResponse
from backchannel.protocol.model import (
    AuthMethod,
    AuthRequest,
    Client,
    DeliveryMode,
    SigningKey,
    User,
)
from backchannel.protocol.provider import Provider
from backchannel.storage import memory_storage
from tests.support.ciba import SECRET, basic
from tests.support.provider import ISSUER, make_provider

BC_URL = ISSUER + "/bc-authorize"
TOKEN_URL = ISSUER + "/token"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
NOW = 1_800_000_000.0  # FakeClock's start


@dataclass(frozen=True)
class ClientKey:
    alg: str
    key: RSAKey | ECKey
    kid: str

    def public(self) -> dict[str, Any]:
        public = dict(self.key.as_dict(private=False))
        public.update(kid=self.kid, alg=self.alg, use="sig")
        return public

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public()]}

    def sign(self, claims: dict[str, Any], *, alg: str | None = None, **header: Any) -> str:
        alg = alg or self.alg
        protected = {"alg": alg, "kid": self.kid, **header}
        return jwt.encode(protected, claims, self.key, algorithms=[alg])


def _rsa(alg: str, kid: str) -> ClientKey:
    return ClientKey(alg, RSAKey.generate_key(2048, parameters={"kid": kid}), kid)


def _ec(kid: str) -> ClientKey:
    return ClientKey("ES256", ECKey.generate_key("P-256", parameters={"kid": kid}), kid)


# Generated once per test session: RSA generation is slow.
ES256_KEY = _ec("client-es")
PS256_KEY = _rsa("PS256", "client-ps")
RS256_KEY = _rsa("RS256", "client-rs")
OTHER_KEY = _ec("stranger")
HINT_ISSUER = "https://hints.example.test"
HINT_KEY = _ec("hint-issuer")


_signing_keys: list[SigningKey] = []


async def new_provider(**overrides: Any) -> Provider:
    """A real Provider on fresh memory storage, seeded with signing keys generated once per
    session (RSA generation would dominate the run time otherwise)."""
    if not _signing_keys:
        template = await make_provider()
        _signing_keys.extend(await template.storage.keys.list_keys())
    storage = memory_storage()
    for key in _signing_keys:
        await storage.keys.add_key(key)
    return await make_provider(storage, **overrides)


async def register(
    provider: Provider,
    client_id: str = "rp-1",
    *,
    method: AuthMethod = AuthMethod.CLIENT_SECRET_BASIC,
    mode: DeliveryMode = DeliveryMode.POLL,
    key: ClientKey | None = None,
    **fields: Any,
) -> Client:
    if mode is not DeliveryMode.POLL:
        fields.setdefault("notification_endpoint", "https://rp.example.test/cb")
    fields.setdefault("scopes", ("openid", "profile", "email"))
    client = Client(
        client_id=client_id,
        name=client_id,
        token_endpoint_auth_method=method,
        secret_hash=None if method is AuthMethod.PRIVATE_KEY_JWT else provider.hasher.fast(SECRET),
        delivery_mode=mode,
        jwks=key.jwks() if key is not None else fields.pop("jwks", None),
        **fields,
    )
    await provider.storage.clients.add_client(client)
    return client


async def add_person(
    provider: Provider,
    subject: str = "u_alice",
    *,
    username: str = "alice",
    email: str | None = "alice@example.test",
    phone: str | None = "+15555550100",
    user_code: str | None = None,
) -> User:
    user = User(
        subject=subject,
        username=username,
        email=email,
        phone=phone,
        user_code_hash=provider.hasher.slow(user_code) if user_code else None,
    )
    await provider.storage.users.add_user(user)
    return user


def post(
    fields: dict[str, str] | list[tuple[str, str]],
    *,
    client_id: str | None = "rp-1",
    secret: str = SECRET,
    method: str = "POST",
    content_type: str = "application/x-www-form-urlencoded",
) -> HttpRequest:
    """A backchannel request, authenticated with Basic unless ``client_id`` is None."""
    headers = {"content-type": content_type}
    if client_id is not None:
        headers["authorization"] = basic(client_id, secret)
    return HttpRequest(method=method, url=BC_URL, headers=headers, body=urlencode(fields).encode())


async def call(provider: Provider, request: HttpRequest) -> HttpResponse | OAuthError:
    try:
        return await backchannel.handle(provider, request)
    except OAuthError as error:
        return error


async def ok(provider: Provider, request: HttpRequest) -> HttpResponse:
    outcome = await call(provider, request)
    assert isinstance(outcome, HttpResponse), outcome.body()
    assert outcome.status == 200
    return outcome


async def fails(
    provider: Provider, request: HttpRequest, error: str, status: int = 400, *, stored: int = 0
) -> str:
    """Assert the request fails with ``error``/``status`` and stored no new request (``stored``
    requests existed before); returns the error description."""
    outcome = await call(provider, request)
    assert isinstance(outcome, OAuthError), f"expected {error}, got {outcome}"
    assert (outcome.error, outcome.http_status) == (error, status), outcome.body()
    assert len(await provider.storage.requests.list_requests()) == stored
    return outcome.description


async def only_request(provider: Provider) -> AuthRequest:
    stored = await provider.storage.requests.list_requests()
    assert len(stored) == 1
    return stored[0]


def assertion(
    key: ClientKey,
    client_id: str = "rp-1",
    *,
    aud: Any = ISSUER,
    exp: float | None = NOW + 60,
    jti: str | None = "jti-1",
    **claims: Any,
) -> str:
    body: dict[str, Any] = {"iss": client_id, "sub": client_id, "aud": aud, **claims}
    if exp is not None:
        body["exp"] = int(exp)
    if jti is not None:
        body["jti"] = jti
    return key.sign(body)


def assertion_fields(token: str) -> dict[str, str]:
    return {"client_assertion_type": JWT_BEARER, "client_assertion": token}
