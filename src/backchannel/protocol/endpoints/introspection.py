"""Token introspection (RFC 7662) for our access tokens (JWTs) and refresh tokens.

Only the client a token was issued to learns that it is active; for anyone else, and for
unknown, expired, rotated or revoked tokens, the answer is ``{"active": false}`` (§2.2).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from backchannel.protocol import paths, tokens
from backchannel.protocol.client_auth import authenticate_client
from backchannel.protocol.errors import InvalidToken, MethodNotAllowed
from backchannel.protocol.http import HttpRequest, HttpResponse
from backchannel.protocol.model import JSON, Client
from backchannel.protocol.provider import Provider

INACTIVE: JSON = {"active": False}
Lookup = Callable[[Provider, Client, str], Awaitable[JSON | None]]


async def handle(provider: Provider, request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        raise MethodNotAllowed("use POST")
    form = request.form()
    client = await authenticate_client(
        provider, request, form, provider.endpoint(paths.INTROSPECTION)
    )
    token = form.required("token")
    for lookup in _lookup_order(form.one("token_type_hint")):
        body = await lookup(provider, client, token)
        if body is not None:
            return HttpResponse.json(body, no_store=True)
    return HttpResponse.json(INACTIVE, no_store=True)


def _lookup_order(hint: str | None) -> tuple[Lookup, Lookup]:
    """The hint only orders the lookups (§2.1); an unknown hint is ignored."""
    if hint == "refresh_token":
        return (_refresh_token, _access_token)
    return (_access_token, _refresh_token)


async def _access_token(provider: Provider, client: Client, token: str) -> JSON | None:
    try:
        claims = await tokens.read_access_token(provider, token)
    except InvalidToken:
        return None
    if claims.get("client_id") != client.client_id:
        return None
    body: JSON = {"active": True, "token_type": "Bearer"}
    for name in ("scope", "client_id", "sub", "exp", "iat", "iss", "aud", "jti",
                 "authorization_details"):  # fmt: skip
        if name in claims:
            body[name] = claims[name]
    return body


async def _refresh_token(provider: Provider, client: Client, token: str) -> JSON | None:
    stored = await provider.storage.tokens.get_refresh_token(provider.hasher.fast(token))
    if stored is None or stored.client_id != client.client_id:
        return None
    if not tokens.is_refresh_token_active(provider, stored):
        return None
    body: JSON = {
        "active": True,
        "token_type": "refresh_token",
        "scope": " ".join(stored.scope),
        "client_id": stored.client_id,
        "sub": stored.subject,
        "exp": int(stored.expires_at),
        "iat": int(stored.created_at),
        "iss": provider.issuer,
    }
    if stored.authorization_details is not None:  # item 178
        body["authorization_details"] = stored.authorization_details
    return body
