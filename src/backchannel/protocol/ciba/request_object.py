"""Signed authentication requests: the ``request`` parameter (CIBA §7.1.1, items 50-65, P4).

Only clients that registered ``backchannel_authentication_request_signing_alg`` may send
one, signed with exactly that (asymmetric) algorithm and a key from their ``jwks`` or the
JWK set at their ``jwks_uri``.
Every failure is ``invalid_request`` with a description saying what was wrong (item 65):
CIBA has no ``invalid_request_object``.

Beside ``request`` only client-authentication fields may appear; a CIBA authentication
parameter outside the JWT is refused (items 53, 54). Parameters Backchannel does not know
are still ignored (item 49).
"""

from __future__ import annotations

from backchannel.protocol.ciba.request import PARAMETERS
from backchannel.protocol.client_auth import (
    CLIENT_AUTH_FIELDS,
    audience_contains,
    is_number,
    verify_client_jwt,
)
from backchannel.protocol.errors import InvalidRequest
from backchannel.protocol.http import Form
from backchannel.protocol.jose import JoseError, peek_header
from backchannel.protocol.model import JSON, Client
from backchannel.protocol.ports import FetchError
from backchannel.protocol.provider import Provider

REQUIRED_CLAIMS = ("exp", "iat", "nbf", "jti")


def has_request_object(form: Form) -> bool:
    return form.one("request") is not None


async def verify_request_object(provider: Provider, client: Client, form: Form) -> JSON:
    """The verified claims of the form's ``request`` JWT, ready for ``read_claims``."""
    token = form.required("request")
    _check_form_beside_request(form)
    alg = _registered_alg(client)
    claims = await _verified_claims(provider, client, token, alg)
    _check_claims(provider, client, claims)
    await _remember_jti(provider, client, claims)
    return claims


def _check_form_beside_request(form: Form) -> None:
    outside = sorted(name for name in form.names() if name in PARAMETERS)
    if outside:
        raise InvalidRequest(
            f"with request, only client authentication fields may be form parameters "
            f"({', '.join(sorted(CLIENT_AUTH_FIELDS))}); move {', '.join(outside)} into the JWT"
        )


def _registered_alg(client: Client) -> str:
    if client.request_signing_alg is None:
        raise InvalidRequest("this client is not registered for signed authentication requests")
    return client.request_signing_alg


async def _verified_claims(provider: Provider, client: Client, token: str, alg: str) -> JSON:
    try:
        header = peek_header(token)
        if header.get("alg") != alg:
            raise InvalidRequest(f"the request must be signed with {alg}")
        _header, claims = await verify_client_jwt(provider, client, token, [alg])
    except JoseError as exc:
        raise InvalidRequest(f"request: {exc}") from None
    except FetchError as exc:
        raise InvalidRequest(f"request: cannot get the client's keys: {exc}") from None
    return claims


def _check_claims(provider: Provider, client: Client, claims: JSON) -> None:
    missing = [name for name in REQUIRED_CLAIMS if claims.get(name) is None]
    if missing:
        raise InvalidRequest(f"the request JWT lacks {', '.join(missing)}")
    if claims.get("iss") != client.client_id:
        raise InvalidRequest("the request JWT iss must be the client_id")
    if claims.get("sub") == client.client_id:
        # Item 64: a client assertion (sub == client_id) must not pass as a request object.
        raise InvalidRequest("the request JWT sub must not be the client_id")
    if not audience_contains(claims.get("aud"), {provider.issuer}):
        raise InvalidRequest("the request JWT aud must contain the issuer")
    _check_times(provider, claims)
    if not isinstance(claims["jti"], str):
        raise InvalidRequest("the request JWT jti must be a string")


def _check_times(provider: Provider, claims: JSON) -> None:
    exp, iat, nbf = claims["exp"], claims["iat"], claims["nbf"]
    if not (is_number(exp) and is_number(iat) and is_number(nbf)):
        raise InvalidRequest("the request JWT exp, iat and nbf must be numbers")
    ciba = provider.settings.ciba
    now = provider.clock.now()
    if exp + ciba.clock_skew_seconds <= now:
        raise InvalidRequest("the request JWT has expired")
    if nbf > now + ciba.clock_skew_seconds:
        raise InvalidRequest("the request JWT is not valid yet (nbf)")
    if iat > now + ciba.clock_skew_seconds:
        raise InvalidRequest("the request JWT iat is in the future")
    if exp - nbf > ciba.request_object_max_lifetime:
        raise InvalidRequest(
            f"the request JWT may be valid for at most {ciba.request_object_max_lifetime} s"
        )


async def _remember_jti(provider: Provider, client: Client, claims: JSON) -> None:
    key = f"request_object:{client.client_id}:{claims['jti']}"
    expires_at = float(claims["exp"]) + provider.settings.ciba.clock_skew_seconds
    if not await provider.storage.replay.remember(key, expires_at, provider.clock.now()):
        raise InvalidRequest("the request JWT was already used (jti)")
