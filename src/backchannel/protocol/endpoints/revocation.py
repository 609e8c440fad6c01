"""Token revocation (RFC 7009).

A refresh token is revoked with its whole family; an access token by its ``jti`` until it
would have expired. Unknown tokens and other clients' tokens still get 200 and nothing
happens (§2.2), so the endpoint reveals nothing. ``token_type_hint`` only orders the
lookups; unknown hints are ignored (§2.2.1: unsupported_token_type is for types the server
cannot revoke, and we can revoke every type we issue).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from backchannel.protocol import paths, tokens
from backchannel.protocol.client_auth import authenticate_client
from backchannel.protocol.errors import InvalidToken, MethodNotAllowed
from backchannel.protocol.http import NO_STORE, HttpRequest, HttpResponse
from backchannel.protocol.model import Client
from backchannel.protocol.provider import Provider

Revoker = Callable[[Provider, Client, str], Awaitable[bool]]


async def handle(provider: Provider, request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        raise MethodNotAllowed("use POST")
    form = request.form()
    client = await authenticate_client(provider, request, form, provider.endpoint(paths.REVOCATION))
    token = form.required("token")
    for revoke in _lookup_order(form.one("token_type_hint")):
        if await revoke(provider, client, token):
            break
    return HttpResponse(status=200, body=None, headers=dict(NO_STORE))


def _lookup_order(hint: str | None) -> tuple[Revoker, Revoker]:
    if hint == "access_token":
        return (_revoke_access_token, _revoke_refresh_token)
    return (_revoke_refresh_token, _revoke_access_token)


async def _revoke_refresh_token(provider: Provider, client: Client, token: str) -> bool:
    """True when ``token`` is one of this client's refresh tokens (now revoked)."""
    stored = await provider.storage.tokens.get_refresh_token(provider.hasher.fast(token))
    if stored is None or stored.client_id != client.client_id:
        return False
    now = provider.clock.now()
    await provider.storage.tokens.revoke_refresh_token(stored.token_hash, now)
    await provider.storage.tokens.revoke_family(stored.family_id, now)
    return True


async def _revoke_access_token(provider: Provider, client: Client, token: str) -> bool:
    """True when ``token`` is one of this client's live access tokens (now revoked)."""
    try:
        claims = await tokens.read_access_token(provider, token)
    except InvalidToken:
        return False
    if claims.get("client_id") != client.client_id:
        return False
    await provider.storage.tokens.revoke_access_token(str(claims["jti"]), float(claims["exp"]))
    return True
