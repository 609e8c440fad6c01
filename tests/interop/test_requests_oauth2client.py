"""requests-oauth2client (PyPI) completes a CIBA poll flow against `backchannel serve`
and gets an id_token whose signature verifies against our JWKS (checklist items 70, 96, 128)."""

from __future__ import annotations

import requests
from requests_oauth2client import (
    BackChannelAuthenticationPollingJob,
    ClientSecretBasic,
    OAuth2Client,
)
from requests_oauth2client.tokens import IdToken

from tests.interop.conftest import LiveServer


def test_poll_flow_with_requests_oauth2client(live_server: LiveServer) -> None:
    discovery = requests.get(
        f"{live_server.issuer}/.well-known/openid-configuration", timeout=10
    ).json()
    client = OAuth2Client.from_discovery_endpoint(
        issuer=live_server.issuer,
        auth=ClientSecretBasic(live_server.client_id, live_server.client_secret),
        testing=True,
        # requests-oauth2client does not read this endpoint from discovery itself.
        backchannel_authentication_endpoint=discovery["backchannel_authentication_endpoint"],
    )
    started = client.backchannel_authentication_request(
        scope="openid profile", login_hint=live_server.login_hint, binding_message="interop"
    )
    assert started.interval == 1
    approved = requests.post(
        f"{live_server.issuer}/test/ciba/approve",
        data={"auth_req_id": str(started.auth_req_id), "action": "allow"},
        timeout=10,
    )
    assert approved.status_code == 200

    job = BackChannelAuthenticationPollingJob(client, started)
    token = None
    for _ in range(10):
        token = job()
        if token is not None:
            break
    assert token is not None

    id_token = IdToken(str(token.id_token))
    key = client.authorization_server_jwks.get_jwk_by_kid(id_token.kid)
    id_token.validate(key, issuer=live_server.issuer, audience=live_server.client_id)
    assert id_token.alg == "RS256"
    assert id_token.claims["aud"] == live_server.client_id
    assert id_token.claims["sub"].startswith("u_")
    assert token.refresh_token is not None
