"""The JWK set endpoint (``jwks_uri``, OIDD §3): the public halves of published keys.

Relying parties cache it; five minutes keeps rotation (which publishes a key long before
it signs) visible well within ``rotation_delay``.
"""

from __future__ import annotations

from backchannel.protocol.http import HttpRequest, HttpResponse
from backchannel.protocol.provider import Provider

CACHE_CONTROL = "public, max-age=300"


async def handle(provider: Provider, request: HttpRequest) -> HttpResponse:
    await provider.keys.refresh_if_stale()
    return HttpResponse(
        status=200,
        body=provider.keys.jwks(),
        headers={"Cache-Control": CACHE_CONTROL},
        media_type="application/json",
    )
