"""Client authentication: one stack for the backchannel, token, introspection and revocation
endpoints (CIBA §4, items 6 and 19), so a client authenticates the same way everywhere.

Exactly one method per request:

- ``client_secret_basic``: HTTP Basic header (RFC 6749 §2.3.1);
- ``client_secret_post``: ``client_id`` + ``client_secret`` form fields;
- ``private_key_jwt``: ``client_assertion_type`` + ``client_assertion`` (OIDC §9, RFC 7523),
  verified with the client's registered inline ``jwks``, or the JWK set at its ``jwks_uri``
  (fetched through ``provider.jwks_fetcher``, cached, fetched again once when an assertion
  names a ``kid`` the cached set lacks: the client rotated its keys).

Two methods at once is ``invalid_request``; everything else that fails (none supplied,
unknown client, wrong secret, a method other than the registered one, a bad assertion)
is ``invalid_client`` (401, items 85, 107, 168), with ``WWW-Authenticate`` when the
Basic header was used (item 88).

Client assertion ``aud`` (a string, or an array containing one of them) may be the issuer,
the token endpoint URL or the URL of the endpoint being called. CIBA Final §7.1 (item 27,
P5) says the OP MUST accept all three at the backchannel endpoint; the token endpoint URL
is also what RFC 7523 clients use for introspection and revocation. The stricter
CIBA-E1/FAPI2 rule (issuer only) is not enforced.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection
from typing import Any, TypeGuard

import orjson

from backchannel.protocol import paths
from backchannel.protocol.errors import InvalidClient, InvalidRequest
from backchannel.protocol.http import Form, HttpRequest
from backchannel.protocol.jose import (
    JoseError,
    Verifier,
    has_private_or_symmetric_keys,
    peek_claims,
    peek_header,
)
from backchannel.protocol.model import JSON, AuthMethod, Client
from backchannel.protocol.ports import FetchError
from backchannel.protocol.provider import Provider

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGORITHMS = ("PS256", "ES256", "RS256")
CLIENT_AUTH_FIELDS = frozenset(
    {"client_id", "client_secret", "client_assertion", "client_assertion_type"}
)
_VERIFIER_CACHE_SIZE = 1024


async def authenticate_client(
    provider: Provider, request: HttpRequest, form: Form, endpoint_url: str
) -> Client:
    """The authenticated client, or ``InvalidClient`` / ``InvalidRequest``."""
    basic = _basic_credentials(request)
    has_post = form.one("client_secret") is not None
    has_assertion = (
        form.one("client_assertion") is not None or form.one("client_assertion_type") is not None
    )
    if (basic is not None) + has_post + has_assertion > 1:
        raise InvalidRequest("use exactly one client authentication method")
    if basic is not None:
        return await _secret_client(provider, form, *basic, AuthMethod.CLIENT_SECRET_BASIC)
    if has_post:
        client_id = form.one("client_id")
        if client_id is None:
            raise InvalidClient("client_secret needs client_id")
        secret = form.required("client_secret")
        return await _secret_client(
            provider, form, client_id, secret, AuthMethod.CLIENT_SECRET_POST
        )
    if has_assertion:
        return await _assertion_client(provider, form, endpoint_url)
    raise InvalidClient("client authentication is required")


def client_verifier(client: Client) -> Verifier:
    """A Verifier over the client's inline ``jwks``, cached per client and JWKS content.

    Raises ``JoseError`` when the client has no usable inline JWKS."""
    if client.jwks is None:
        raise JoseError("the client has no registered jwks")
    fingerprint = orjson.dumps(client.jwks, option=orjson.OPT_SORT_KEYS)
    return _VERIFIERS.get(f"client:{client.client_id}", fingerprint, client.jwks)


async def verify_client_jwt(
    provider: Provider, client: Client, token: str, algorithms: Collection[str]
) -> tuple[JSON, JSON]:
    """(header, claims) of a JWT signed by one of the client's keys: its inline ``jwks``, or
    else the set at its ``jwks_uri``. Raises ``JoseError`` (bad JWT or signature) or
    ``FetchError`` (the ``jwks_uri`` set could not be had)."""
    if client.jwks is not None or client.jwks_uri is None:
        return client_verifier(client).verify(token, algorithms)
    jwks = await _fetched_jwks(provider, client.jwks_uri, refresh=False)
    try:
        return _uri_verifier(client.jwks_uri, jwks).verify(token, algorithms)
    except JoseError:
        if not _names_unknown_kid(token, jwks):
            raise
    jwks = await _fetched_jwks(provider, client.jwks_uri, refresh=True)
    return _uri_verifier(client.jwks_uri, jwks).verify(token, algorithms)


async def _fetched_jwks(provider: Provider, url: str, *, refresh: bool) -> JSON:
    if provider.jwks_fetcher is None:
        raise FetchError("jwks_uri: fetching client JWK sets is not configured")
    jwks = dict(await provider.jwks_fetcher.fetch(url, refresh=refresh))
    if has_private_or_symmetric_keys(jwks):
        # Item 23: a client JWK set holds public keys only.
        raise FetchError("jwks_uri: the JWK set holds private or symmetric keys")
    return jwks


def _uri_verifier(url: str, jwks: JSON) -> Verifier:
    fingerprint = orjson.dumps(jwks, option=orjson.OPT_SORT_KEYS)
    return _VERIFIERS.get(f"jwks_uri:{url}", fingerprint, jwks)


def _names_unknown_kid(token: str, jwks: JSON) -> bool:
    kid = peek_header(token).get("kid")
    keys = jwks.get("keys")
    known = {k.get("kid") for k in keys if isinstance(k, dict)} if isinstance(keys, list) else set()
    return isinstance(kid, str) and kid not in known


# -- shared secrets --------------------------------------------------------------------------


def _basic_credentials(request: HttpRequest) -> tuple[str, str] | None:
    try:
        return request.basic_credentials()
    except InvalidRequest:
        raise InvalidClient("malformed Basic credentials", used_basic=True) from None


async def _secret_client(
    provider: Provider, form: Form, client_id: str, secret: str, method: AuthMethod
) -> Client:
    used_basic = method is AuthMethod.CLIENT_SECRET_BASIC
    form_client_id = form.one("client_id")
    if used_basic and form_client_id is not None and form_client_id != client_id:
        raise InvalidClient("client_id does not match the Basic credentials", used_basic=True)
    client = await provider.storage.clients.get_client(client_id)
    if client is None or not provider.hasher.verify(secret, client.secret_hash):
        raise InvalidClient("unknown client or wrong secret", used_basic=used_basic)
    _check_method(client, method, used_basic)
    return client


def _check_method(client: Client, method: AuthMethod, used_basic: bool = False) -> None:
    if client.token_endpoint_auth_method is not method:
        raise InvalidClient(
            f"the client is registered for {client.token_endpoint_auth_method.value}",
            used_basic=used_basic,
        )


# -- private_key_jwt --------------------------------------------------------------------------


async def _assertion_client(provider: Provider, form: Form, endpoint_url: str) -> Client:
    if form.one("client_assertion_type") != JWT_BEARER:
        raise InvalidClient(f"client_assertion_type must be {JWT_BEARER}")
    assertion = form.one("client_assertion")
    if assertion is None:
        raise InvalidClient("missing client_assertion")
    client = await _assertion_issuer(provider, form, assertion)
    claims = await _verified_assertion_claims(provider, client, assertion)
    _check_assertion_claims(provider, client, claims, endpoint_url)
    await _remember_assertion(provider, client, claims)
    return client


async def _assertion_issuer(provider: Provider, form: Form, assertion: str) -> Client:
    try:
        unverified = peek_claims(assertion)
    except JoseError as exc:
        raise InvalidClient(f"client_assertion: {exc}") from None
    client_id = unverified.get("sub")
    if not isinstance(client_id, str) or not client_id:
        raise InvalidClient("client_assertion has no sub")
    form_client_id = form.one("client_id")
    if form_client_id is not None and form_client_id != client_id:
        raise InvalidClient("client_id does not match the client_assertion")
    client = await provider.storage.clients.get_client(client_id)
    if client is None:
        raise InvalidClient("unknown client")
    _check_method(client, AuthMethod.PRIVATE_KEY_JWT)
    return client


async def _verified_assertion_claims(provider: Provider, client: Client, assertion: str) -> JSON:
    try:
        _header, claims = await verify_client_jwt(provider, client, assertion, ASSERTION_ALGORITHMS)
    except JoseError as exc:
        raise InvalidClient(f"client_assertion: {exc}") from None
    except FetchError as exc:
        raise InvalidClient(f"cannot get the client's keys: {exc}") from None
    return claims


def _check_assertion_claims(
    provider: Provider, client: Client, claims: JSON, endpoint_url: str
) -> None:
    if claims.get("iss") != client.client_id or claims.get("sub") != client.client_id:
        raise InvalidClient("client_assertion iss and sub must both be the client_id")
    accepted = {provider.issuer, provider.endpoint(paths.TOKEN), endpoint_url}
    if not audience_contains(claims.get("aud"), accepted):
        raise InvalidClient("client_assertion aud must be the issuer or an endpoint URL")
    exp = claims.get("exp")
    if not is_number(exp):
        raise InvalidClient("client_assertion needs a numeric exp")
    if exp + provider.settings.ciba.clock_skew_seconds <= provider.clock.now():
        raise InvalidClient("client_assertion has expired")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise InvalidClient("client_assertion needs a jti")


async def _remember_assertion(provider: Provider, client: Client, claims: JSON) -> None:
    key = f"client_assertion:{client.client_id}:{claims['jti']}"
    now = provider.clock.now()
    expires_at = float(claims["exp"]) + provider.settings.ciba.clock_skew_seconds
    if not await provider.storage.replay.remember(key, expires_at, now):
        raise InvalidClient("client_assertion was already used")


# -- helpers shared with signed requests and hints --------------------------------------------


def is_number(value: Any) -> TypeGuard[int | float]:
    """A JSON number (booleans are not numbers)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def audience_contains(aud: Any, accepted: set[str]) -> bool:
    """``aud`` (a string or an array of strings) names one of ``accepted``."""
    if isinstance(aud, str):
        return aud in accepted
    if isinstance(aud, list):
        return any(isinstance(item, str) and item in accepted for item in aud)
    return False


class _VerifierCache:
    """Imported JWK sets, keyed by client; a changed JWKS replaces the old entry."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[str, tuple[bytes, Verifier]] = OrderedDict()

    def get(self, owner: str, fingerprint: bytes, jwks: JSON) -> Verifier:
        entry = self._entries.get(owner)
        if entry is not None and entry[0] == fingerprint:
            self._entries.move_to_end(owner)
            return entry[1]
        verifier = Verifier(jwks)
        self._entries[owner] = (fingerprint, verifier)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return verifier


_VERIFIERS = _VerifierCache(_VERIFIER_CACHE_SIZE)


def issuer_verifier(issuer: str, jwks: JSON) -> Verifier:
    """A cached Verifier for a trusted third-party issuer's JWKS (login_hint_token)."""
    fingerprint = orjson.dumps(jwks, option=orjson.OPT_SORT_KEYS)
    return _VERIFIERS.get(f"issuer:{issuer}", fingerprint, jwks)
