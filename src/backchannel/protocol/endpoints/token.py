"""The token endpoint (RFC 6749 §3.2): the CIBA grant (CIBA §10.1) and refresh_token.

Steps: POST only -> strict form -> client authentication (item 90) -> grant_type ->
the grant's own rules -> 200 token response with ``Cache-Control: no-store`` (item 96).
"""

from __future__ import annotations

from backchannel.protocol import paths, tokens
from backchannel.protocol.ciba import polling
from backchannel.protocol.client_auth import authenticate_client
from backchannel.protocol.errors import MethodNotAllowed, UnsupportedGrantType
from backchannel.protocol.http import Form, HttpRequest, HttpResponse
from backchannel.protocol.model import Client, TokenSet
from backchannel.protocol.provider import Provider

CIBA_GRANT = "urn:openid:params:grant-type:ciba"
REFRESH_GRANT = "refresh_token"
GRANT_TYPES = (CIBA_GRANT, REFRESH_GRANT)


async def handle(provider: Provider, request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        raise MethodNotAllowed("use POST")
    form = request.form()
    client = await authenticate_client(provider, request, form, provider.endpoint(paths.TOKEN))
    issued = await _grant(provider, client, form)
    return HttpResponse.json(issued.response(), no_store=True)


async def _grant(provider: Provider, client: Client, form: Form) -> TokenSet:
    grant_type = form.required("grant_type")
    if grant_type == CIBA_GRANT:
        return await polling.poll(provider, client, form.required("auth_req_id"))
    if grant_type == REFRESH_GRANT:
        return await tokens.refresh(
            provider, client, form.required("refresh_token"), form.one("scope")
        )
    raise UnsupportedGrantType(f"grant_type must be one of {', '.join(GRANT_TYPES)}")
