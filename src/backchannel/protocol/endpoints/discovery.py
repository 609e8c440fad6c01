"""OpenID Connect Discovery 1.0 metadata (checklist items 1-8).

Everything listed here is true of this server; ``tests/web/test_discovery.py`` checks each
entry against the implementation. Empty arrays are omitted (item 8). There is no
authorization endpoint (Backchannel is CIBA-only), so ``authorization_endpoint`` and
``response_types_supported`` are absent.
"""

from __future__ import annotations

from typing import Any

from backchannel.authenticator.assurance import SUPPORTED_ACR_VALUES
from backchannel.protocol import paths
from backchannel.protocol.http import HttpRequest, HttpResponse
from backchannel.protocol.provider import Provider

CIBA_GRANT = "urn:openid:params:grant-type:ciba"
GRANT_TYPES = (CIBA_GRANT, "refresh_token")
DELIVERY_MODES = ("poll", "ping", "push")
CLIENT_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")
CLIENT_ASSERTION_ALGS = ("PS256", "ES256", "RS256")
REQUEST_OBJECT_ALGS = ("PS256", "ES256", "RS256")
SCOPES = ("openid", "profile", "email", "phone", "address", "offline_access")
CLAIMS = (
    "sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "amr",
    "name", "preferred_username", "email", "email_verified",
    "phone_number", "phone_number_verified", "address", "updated_at",
)  # fmt: skip


def metadata(provider: Provider) -> dict[str, Any]:
    endpoint = provider.endpoint
    document: dict[str, Any] = {
        "issuer": provider.issuer,
        "jwks_uri": endpoint(paths.JWKS),
        "token_endpoint": endpoint(paths.TOKEN),
        "backchannel_authentication_endpoint": endpoint(paths.BACKCHANNEL),
        "userinfo_endpoint": endpoint(paths.USERINFO),
        "introspection_endpoint": endpoint(paths.INTROSPECTION),
        "revocation_endpoint": endpoint(paths.REVOCATION),
        "grant_types_supported": list(GRANT_TYPES),
        "backchannel_token_delivery_modes_supported": list(DELIVERY_MODES),
        "backchannel_authentication_request_signing_alg_values_supported": list(
            REQUEST_OBJECT_ALGS
        ),
        "backchannel_user_code_parameter_supported": True,
        "token_endpoint_auth_methods_supported": list(CLIENT_AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": list(CLIENT_ASSERTION_ALGS),
        "introspection_endpoint_auth_methods_supported": list(CLIENT_AUTH_METHODS),
        "revocation_endpoint_auth_methods_supported": list(CLIENT_AUTH_METHODS),
        "id_token_signing_alg_values_supported": provider.keys.signing_algorithms(),
        "subject_types_supported": ["public"],
        "scopes_supported": list(SCOPES),
        "claims_supported": list(CLAIMS),
        "claims_parameter_supported": False,
        # What an approval through an authentication device proves (``assurance``).
        "acr_values_supported": list(SUPPORTED_ACR_VALUES),
    }
    return {name: value for name, value in document.items() if value != []}


async def handle(provider: Provider, request: HttpRequest) -> HttpResponse:
    await provider.keys.refresh_if_stale()
    response = HttpResponse.json(metadata(provider))
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
