"""Token issuance and the refresh-token grant.

- ID tokens (OIDC §2): signed with the client's ``id_token_signed_response_alg``.
- Access tokens: JWTs per RFC 9068 (``typ: at+jwt``), audience = the issuer, because the
  only resource server is our own userinfo endpoint. Revocation is by ``jti``.
- Refresh tokens: opaque random strings, stored only as ``hasher.fast(token)``. They rotate
  on every use; presenting a rotated one again revokes the whole family (RFC 9700 §4.14.2).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from backchannel.protocol import jose
from backchannel.protocol.errors import InvalidGrant, InvalidScope, InvalidToken
from backchannel.protocol.model import JSON, Client, RefreshToken, TokenSet
from backchannel.protocol.provider import Provider

ACCESS_TOKEN_TYP = "at+jwt"
AUTH_REQ_ID_CLAIM = "urn:openid:params:jwt:claim:auth_req_id"
RT_HASH_CLAIM = "urn:openid:params:jwt:claim:rt_hash"
_BAD_REFRESH_TOKEN = "the refresh token is invalid, expired or revoked"


@dataclass(slots=True, frozen=True)
class Grant:
    """What a token set is issued for: the user, what they consented to, how they logged in."""

    subject: str
    scope: tuple[str, ...]
    auth_time: float
    acr: str | None = None
    amr: tuple[str, ...] = ()
    authorization_details: list[JSON] | None = None


@dataclass(slots=True, frozen=True)
class Issuance:
    """A token set plus what the caller must store or undo: the refresh-token record (stored
    by whoever commits the grant) and the access token's jti (revoked if the commit fails)."""

    tokens: TokenSet
    refresh_token: RefreshToken | None
    access_jti: str
    access_expires_at: float


def id_token_claims(
    provider: Provider,
    client: Client,
    subject: str,
    *,
    auth_time: float,
    acr: str | None,
    amr: tuple[str, ...],
    extra: dict[str, Any] | None = None,
    now: float | None = None,
) -> JSON:
    """``now``: the moment of issue (default: the clock's), shared by a whole token set."""
    now = provider.clock.now() if now is None else now
    issued_at = int(now)
    claims: JSON = {
        "iss": provider.issuer,
        "sub": subject,
        "aud": client.client_id,
        "iat": issued_at,
        "exp": issued_at + provider.settings.tokens.id_token_ttl,
        "auth_time": int(auth_time),
    }
    if acr:
        claims["acr"] = acr
    if amr:
        claims["amr"] = list(amr)
    if extra:
        claims.update(extra)
    return claims


def access_token_claims(
    provider: Provider,
    client: Client,
    subject: str,
    scope: tuple[str, ...],
    *,
    auth_time: float,
    acr: str | None,
    authorization_details: list[JSON] | None,
    now: float | None = None,
) -> tuple[JSON, str, int]:
    """The claims of an RFC 9068 access token. Returns (claims, jti, expires_in)."""
    now = provider.clock.now() if now is None else now
    issued_at = int(now)
    settings = provider.settings.tokens
    expires_in = settings.access_token_ttl
    jti = provider.random.token(16)
    issuer = provider.issuer
    claims: JSON = {
        "iss": issuer,
        "sub": subject,
        "aud": issuer,
        "client_id": client.client_id,
        "iat": issued_at,
        "exp": issued_at + expires_in,
        "jti": jti,
        "scope": " ".join(scope),
        "auth_time": int(auth_time),
    }
    if acr:
        claims["acr"] = acr
    if authorization_details is not None:
        claims["authorization_details"] = authorization_details
    return claims, jti, expires_in


async def read_access_token(provider: Provider, token: str) -> JSON:
    """The claims of one of our live access tokens, or ``InvalidToken``."""
    try:
        header, claims = provider.keys.verify(token, provider.settings.keys.algorithms)
    except jose.JoseError:
        raise InvalidToken("the access token is invalid") from None
    if str(header.get("typ", "")).lower() not in (ACCESS_TOKEN_TYP, "application/at+jwt"):
        raise InvalidToken("not an access token")
    if claims.get("iss") != provider.issuer or not _has_audience(claims, provider.issuer):
        raise InvalidToken("the access token was not issued for this server")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or provider.clock.now() >= exp:
        raise InvalidToken("the access token has expired")
    jti = claims.get("jti")
    if not isinstance(jti, str) or await provider.storage.tokens.is_access_token_revoked(jti):
        raise InvalidToken("the access token was revoked")
    return claims


def new_refresh_token(
    provider: Provider,
    client: Client,
    grant: Grant,
    family_id: str | None = None,
    now: float | None = None,
) -> tuple[str, RefreshToken]:
    """A fresh opaque refresh token and the record to store (only its hash)."""
    now = provider.clock.now() if now is None else now
    token = provider.random.token(32)
    record = RefreshToken(
        token_hash=provider.hasher.fast(token),
        family_id=family_id or provider.random.token(16),
        client_id=client.client_id,
        subject=grant.subject,
        scope=grant.scope,
        created_at=now,
        expires_at=now + provider.settings.tokens.refresh_token_ttl,
        auth_time=grant.auth_time,
        acr=grant.acr,
        amr=grant.amr,
        authorization_details=grant.authorization_details,
    )
    return token, record


async def issue(
    provider: Provider,
    client: Client,
    grant: Grant,
    *,
    with_refresh_token: bool,
    family_id: str | None = None,
    refresh_grant: Grant | None = None,
    push_auth_req_id: str | None = None,
) -> Issuance:
    """Build a whole token set. Nothing is stored here: the caller commits the refresh-token
    record (redeem / rotate) and calls ``discard`` if that commit loses a race.

    ``refresh_grant`` is what the new refresh token covers when it differs from the access
    token's grant (a narrowed refresh keeps the original refresh scope, RFC 6749 §6).
    ``push_auth_req_id`` adds the CIBA push-mode ID token claims (CIBA §10.3.1).
    The whole set is issued at one clock reading (same iat, signing keys of that moment).
    """
    await provider.keys.refresh_if_stale()
    now = provider.clock.now()
    keys = provider.keys
    access_claims, jti, expires_in = access_token_claims(
        provider,
        client,
        grant.subject,
        grant.scope,
        auth_time=grant.auth_time,
        acr=grant.acr,
        authorization_details=grant.authorization_details,
        now=now,
    )
    access_alg = provider.settings.tokens.access_token_alg
    refresh, record = (None, None)
    if with_refresh_token:
        refresh, record = new_refresh_token(
            provider, client, refresh_grant or grant, family_id, now
        )
    id_alg = client.id_token_signed_response_alg
    id_claims = id_token_claims(
        provider,
        client,
        grant.subject,
        auth_time=grant.auth_time,
        acr=grant.acr,
        amr=grant.amr,
        now=now,
    )
    if push_auth_req_id:  # the ID token carries hashes of the other tokens (CIBA §10.3.1)
        token = await keys.sign_beside_loop(access_claims, access_alg, ACCESS_TOKEN_TYP, now=now)
        id_claims.update(_push_claims(client, push_auth_req_id, token, refresh))
        signed_id_token = await keys.sign_beside_loop(id_claims, id_alg, now=now)
    else:
        jobs = [(access_claims, access_alg, ACCESS_TOKEN_TYP), (id_claims, id_alg, "JWT")]
        token, signed_id_token = await keys.sign_all_beside_loop(jobs, now=now)
    tokens = TokenSet(
        access_token=token,
        expires_in=expires_in,
        id_token=signed_id_token,
        refresh_token=refresh,
        scope=grant.scope,
        authorization_details=grant.authorization_details,
    )
    # The access token's own exp: its jti must stay revoked until then.
    return Issuance(tokens, record, jti, int(now) + expires_in)


async def discard(provider: Provider, issuance: Issuance) -> None:
    """Make an issued-but-not-committed token set unusable (its refresh token was never
    stored, so only the self-contained access token needs revoking)."""
    await provider.storage.tokens.revoke_access_token(
        issuance.access_jti, issuance.access_expires_at
    )


async def refresh(
    provider: Provider, client: Client, presented: str, requested_scope: str | None
) -> TokenSet:
    """The refresh_token grant (RFC 6749 §6) with rotation and reuse detection."""
    stored = await _usable_refresh_token(provider, client, presented)
    if await provider.storage.users.get_user(stored.subject) is None:
        raise InvalidGrant(_BAD_REFRESH_TOKEN)
    original = Grant(
        subject=stored.subject,
        scope=stored.scope,
        auth_time=stored.auth_time,
        acr=stored.acr,
        amr=stored.amr,
        authorization_details=stored.authorization_details,
    )
    narrowed = replace(original, scope=narrow_scope(original.scope, requested_scope))
    issuance = await issue(
        provider,
        client,
        narrowed,
        with_refresh_token=True,
        family_id=stored.family_id,
        refresh_grant=original,
    )
    assert issuance.refresh_token is not None
    now = provider.clock.now()
    if not await provider.storage.tokens.rotate_refresh_token(
        stored.token_hash, now, issuance.refresh_token
    ):
        # Another use of the same token got there first: treat it as reuse.
        await discard(provider, issuance)
        await provider.storage.tokens.revoke_family(stored.family_id, now)
        raise InvalidGrant(_BAD_REFRESH_TOKEN)
    return issuance.tokens


def narrow_scope(granted: tuple[str, ...], requested: str | None) -> tuple[str, ...]:
    """RFC 6749 §6: a refresh may ask for less than was granted, never more."""
    if requested is None:
        return granted
    wanted = requested.split()
    if not wanted:
        return granted
    extra = [s for s in wanted if s not in granted]
    if extra:
        raise InvalidScope(f"scope exceeds the original grant: {' '.join(extra)}")
    return tuple(s for s in granted if s in wanted)


async def _usable_refresh_token(provider: Provider, client: Client, presented: str) -> RefreshToken:
    now = provider.clock.now()
    stored = await provider.storage.tokens.get_refresh_token(provider.hasher.fast(presented))
    if stored is None or stored.client_id != client.client_id or stored.revoked_at is not None:
        raise InvalidGrant(_BAD_REFRESH_TOKEN)
    if stored.rotated_at is not None:
        await provider.storage.tokens.revoke_family(stored.family_id, now)
        raise InvalidGrant(_BAD_REFRESH_TOKEN)
    if now >= stored.expires_at:
        raise InvalidGrant(_BAD_REFRESH_TOKEN)
    return stored


def is_refresh_token_active(provider: Provider, stored: RefreshToken) -> bool:
    return (
        stored.revoked_at is None
        and stored.rotated_at is None
        and provider.clock.now() < stored.expires_at
    )


def _push_claims(
    client: Client, auth_req_id: str, access: str, refresh: str | None
) -> dict[str, Any]:
    alg = client.id_token_signed_response_alg
    claims: dict[str, Any] = {
        "at_hash": jose.half_hash(access, alg),
        AUTH_REQ_ID_CLAIM: auth_req_id,
    }
    if refresh is not None:
        claims[RT_HASH_CLAIM] = jose.half_hash(refresh, alg)
    return claims


def _has_audience(claims: JSON, audience: str) -> bool:
    aud = claims.get("aud")
    return aud == audience or (isinstance(aud, list) and audience in aud)
