"""The userinfo endpoint (OIDC §5.3): claims about the user an access token was issued for.

The token comes as a Bearer header (RFC 6750 §2.1) or, on POST only, as the
``access_token`` form field (§2.2); never both (§2). It must carry the ``openid`` scope.
"""

from __future__ import annotations

from backchannel.protocol import tokens, users
from backchannel.protocol.errors import (
    InsufficientScope,
    InvalidRequest,
    InvalidToken,
    MethodNotAllowed,
)
from backchannel.protocol.http import FORM_CONTENT_TYPE, HttpRequest, HttpResponse
from backchannel.protocol.provider import Provider


async def handle(provider: Provider, request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "POST"):
        raise MethodNotAllowed("use GET or POST")
    claims = await tokens.read_access_token(provider, _presented_token(request))
    scopes = str(claims.get("scope", "")).split()
    if "openid" not in scopes:
        raise InsufficientScope("the access token lacks the openid scope")
    user = await provider.storage.users.get_user(str(claims["sub"]))
    if user is None:
        raise InvalidToken("the user of this access token no longer exists")
    body = {**users.user_claims(user, scopes), "sub": user.subject}
    return HttpResponse.json(body, no_store=True)


def _presented_token(request: HttpRequest) -> str:
    header_token = request.bearer_token()
    form_token = _form_token(request)
    if header_token is not None and form_token is not None:
        raise InvalidRequest("send the access token in one place only")
    token = header_token or form_token
    if token is None:
        raise InvalidToken("an access token is required")
    return token


def _form_token(request: HttpRequest) -> str | None:
    if request.method != "POST":
        return None
    content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
    if content_type != FORM_CONTENT_TYPE:
        return None
    return request.form().one("access_token")
