"""Resolving the one hint of a backchannel request to a user (CIBA §7.1, §7.2(4-5), §14).

Which error when (items 39-41, 67, 80, 81):

- ``login_hint``: tried as a subject, an email, a phone number and a username
  (``users.find_by_login_hint``); no match is ``unknown_user_id``.
- ``id_token_hint``: must be a JWS signed by one of our published keys, with ``iss`` our
  issuer and the presenting client in ``aud``. Expired hints are accepted on purpose
  (item 41): an ID token is a hint here, not a credential.
- ``login_hint_token``: a JWS from an issuer the client registered in
  ``hint_token_issuers``, verified with that issuer's JWKS; ``exp`` in the past is
  ``expired_login_hint_token``. The user is named by an RFC 9493 ``sub_id`` object
  (formats ``email``, ``phone_number``, ``iss_sub`` (``iss`` must be our issuer),
  ``opaque`` (our subject)) or else by the ``sub`` claim (our subject).

A hint token that fails validation (not a JWS, bad signature, wrong ``iss``/``aud``, an
untrusted issuer, no subject at all) is ``invalid_request``: the client sent a broken
parameter. A valid hint that names nobody we know, or uses an identifier format we do not
support, is ``unknown_user_id``.
"""

from __future__ import annotations

from typing import Any

from backchannel.protocol import users
from backchannel.protocol.ciba.request import BackchannelParams
from backchannel.protocol.client_auth import audience_contains, is_number, issuer_verifier
from backchannel.protocol.errors import ExpiredLoginHintToken, InvalidRequest, UnknownUserId
from backchannel.protocol.jose import JoseError, peek_claims
from backchannel.protocol.model import JSON, Client, User
from backchannel.protocol.provider import Provider

HINT_ALGORITHMS = ("RS256", "PS256", "ES256")


async def resolve_hint(provider: Provider, client: Client, params: BackchannelParams) -> User:
    if params.login_hint is not None:
        user = await users.find_by_login_hint(provider.storage.users, params.login_hint)
    elif params.id_token_hint is not None:
        user = await _from_id_token_hint(provider, client, params.id_token_hint)
    else:
        user = await _from_login_hint_token(provider, client, params.hint)
    if user is None:
        raise UnknownUserId("no user matches the hint")
    return user


async def _from_id_token_hint(provider: Provider, client: Client, token: str) -> User | None:
    await provider.keys.refresh_if_stale()
    try:
        _header, claims = provider.keys.verify(token, HINT_ALGORITHMS)
    except JoseError as exc:
        raise InvalidRequest(f"id_token_hint: {exc}") from None
    if claims.get("iss") != provider.issuer:
        raise InvalidRequest("id_token_hint was not issued by this OP")
    if not audience_contains(claims.get("aud"), {client.client_id}):
        raise InvalidRequest("id_token_hint was not issued to this client")
    return await _by_subject(provider, claims.get("sub"))


async def _from_login_hint_token(provider: Provider, client: Client, token: str) -> User | None:
    claims = _verified_login_hint_token(client, token)
    exp = claims.get("exp")
    if exp is not None:
        if not is_number(exp):
            raise InvalidRequest("login_hint_token exp must be a number")
        if exp + provider.settings.ciba.clock_skew_seconds <= provider.clock.now():
            raise ExpiredLoginHintToken("the login_hint_token has expired")
    sub_id = claims.get("sub_id")
    if sub_id is not None:
        return await _by_subject_identifier(provider, sub_id)
    if claims.get("sub") is None:
        raise InvalidRequest("login_hint_token names no subject (sub or sub_id)")
    return await _by_subject(provider, claims.get("sub"))


def _verified_login_hint_token(client: Client, token: str) -> JSON:
    try:
        issuer = peek_claims(token).get("iss")
        if not isinstance(issuer, str) or issuer not in client.hint_token_issuers:
            raise InvalidRequest("login_hint_token is not from an issuer this client trusts")
        verifier = issuer_verifier(issuer, client.hint_token_issuers[issuer])
        _header, claims = verifier.verify(token, HINT_ALGORITHMS)
    except JoseError as exc:
        raise InvalidRequest(f"login_hint_token: {exc}") from None
    return claims


async def _by_subject_identifier(provider: Provider, sub_id: Any) -> User | None:
    """RFC 9493 subject identifiers."""
    if not isinstance(sub_id, dict):
        raise InvalidRequest("login_hint_token sub_id must be an object")
    fmt = sub_id.get("format")
    directory = provider.storage.users
    try:
        if fmt == "email" and isinstance(sub_id.get("email"), str):
            return await directory.find_user("email", users.normalise("email", sub_id["email"]))
        if fmt == "phone_number" and isinstance(sub_id.get("phone_number"), str):
            phone = users.normalise("phone", sub_id["phone_number"])
            return await directory.find_user("phone", phone)
    except ValueError:
        return None
    if fmt == "iss_sub" and sub_id.get("iss") == provider.issuer:
        return await _by_subject(provider, sub_id.get("sub"))
    if fmt == "opaque":
        return await _by_subject(provider, sub_id.get("id"))
    return None


async def _by_subject(provider: Provider, subject: Any) -> User | None:
    if not isinstance(subject, str) or not subject:
        return None
    return await provider.storage.users.get_user(subject)
