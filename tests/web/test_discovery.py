"""Discovery cross-check: everything the metadata advertises is true of the server
(checklist items 1-8). Each test takes a list from the document and exercises every value
over HTTP."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from backchannel.protocol import jose
from backchannel.protocol.model import AuthMethod, Client, DeliveryMode, User
from backchannel.protocol.provider import Provider
from tests.authenticator.support import world
from tests.authenticator.webauthn_support import device_post, registered
from tests.support.ciba import basic
from tests.support.http import asgi_client
from tests.support.provider import make_provider

pytestmark = pytest.mark.anyio
SECRET = "discovery-secret-0123456789abcdef"
CIBA = "urn:openid:params:grant-type:ciba"


def client_key(alg: str) -> RSAKey | ECKey:
    if alg.startswith("ES"):
        return ECKey.generate_key("P-256", parameters={"kid": f"k-{alg}"})
    return RSAKey.generate_key(2048, parameters={"kid": f"k-{alg}"})


def public_jwks(key: RSAKey | ECKey) -> dict[str, Any]:
    return {"keys": [dict(key.as_dict(private=False))]}


async def register(provider: Provider, client_id: str, **fields: Any) -> Client:
    values: dict[str, Any] = {
        "client_id": client_id,
        "name": client_id,
        "secret_hash": provider.hasher.fast(SECRET),
        "scopes": ("openid", "profile", "email", "phone", "address", "offline_access"),
    }
    values.update(fields)
    if values.get("delivery_mode", DeliveryMode.POLL) != DeliveryMode.POLL:
        values["notification_endpoint"] = "https://rp.example.test/cb"
    client = Client(**values)
    await provider.storage.clients.add_client(client)
    return client


async def setup() -> tuple[Provider, dict[str, Any]]:
    provider = await make_provider(testing={"automated_approval": True})
    user = User(
        subject="u_disco",
        username="disco",
        email="disco@example.test",
        phone="+15555550123",
        display_name="Disco",
        claims={"address": {"country": "NZ"}},
        user_code_hash=provider.hasher.slow("2468"),
    )
    await provider.storage.users.add_user(user)
    async with asgi_client(provider) as client:
        document = (await client.get("/.well-known/openid-configuration")).json()
    return provider, document


def path_of(url: str, provider: Provider) -> str:
    assert url.startswith(provider.issuer)
    return url[len(provider.issuer) :]


async def start(http: httpx.AsyncClient, client_id: str, **form: str) -> httpx.Response:
    data = {"scope": "openid", "login_hint": "disco", **form}
    return await http.post("/bc-authorize", data=data, auth=(client_id, SECRET))


async def approve_and_redeem(http: httpx.AsyncClient, client_id: str, **form: str) -> Any:
    started = await start(http, client_id, **form)
    assert started.status_code == 200, started.text
    auth_req_id = started.json()["auth_req_id"]
    approved = await http.post(
        "/test/ciba/approve", data={"auth_req_id": auth_req_id, "action": "allow"}
    )
    assert approved.status_code == 200
    tokens = await http.post(
        "/token", data={"grant_type": CIBA, "auth_req_id": auth_req_id}, auth=(client_id, SECRET)
    )
    assert tokens.status_code == 200, tokens.text
    return tokens.json()


async def test_item_7_issuer_and_every_endpoint_answer() -> None:
    provider, document = await setup()
    assert document["issuer"] == provider.issuer
    methods = {
        "jwks_uri": "GET",
        "token_endpoint": "POST",
        "backchannel_authentication_endpoint": "POST",
        "userinfo_endpoint": "GET",
        "introspection_endpoint": "POST",
        "revocation_endpoint": "POST",
    }
    urls = {name: url for name, url in document.items() if name.endswith(("_endpoint", "_uri"))}
    assert set(urls) == set(methods)
    async with asgi_client(provider) as http:
        for name, url in urls.items():
            response = await http.request(methods[name], path_of(url, provider))
            assert response.status_code != 404, name
            assert response.status_code < 500, name


async def test_item_8_no_empty_arrays() -> None:
    _, document = await setup()
    assert all(value != [] for value in document.values())


async def test_item_5_every_grant_type_is_handled() -> None:
    provider, document = await setup()
    await register(provider, "rp")
    async with asgi_client(provider) as http:
        for grant in document["grant_types_supported"]:
            response = await http.post(
                "/token",
                data={"grant_type": grant, "auth_req_id": "x", "refresh_token": "x"},
                auth=("rp", SECRET),
            )
            assert response.json()["error"] == "invalid_grant", grant


async def test_item_1_every_delivery_mode_accepts_requests() -> None:
    provider, document = await setup()
    async with asgi_client(provider) as http:
        for mode in document["backchannel_token_delivery_modes_supported"]:
            await register(provider, f"rp-{mode}", delivery_mode=DeliveryMode(mode))
            extra = {} if mode == "poll" else {"client_notification_token": "n" * 32}
            response = await start(http, f"rp-{mode}", **extra)
            assert response.status_code == 200, (mode, response.text)


async def test_item_6_every_client_auth_method_and_assertion_alg_works() -> None:
    provider, document = await setup()
    async with asgi_client(provider) as http:
        for method in document["token_endpoint_auth_methods_supported"]:
            algs = (
                document["token_endpoint_auth_signing_alg_values_supported"]
                if method == "private_key_jwt"
                else [None]
            )
            for alg in algs:
                client_id = f"rp-{method}-{alg}"
                form: dict[str, str] = {}
                auth: tuple[str, str] | None = None
                if method == "client_secret_basic":
                    await register(provider, client_id)
                    auth = (client_id, SECRET)
                elif method == "client_secret_post":
                    await register(
                        provider, client_id, token_endpoint_auth_method=AuthMethod(method)
                    )
                    form = {"client_id": client_id, "client_secret": SECRET}
                else:
                    assert alg is not None
                    key = client_key(alg)
                    await register(
                        provider,
                        client_id,
                        token_endpoint_auth_method=AuthMethod(method),
                        secret_hash=None,
                        jwks=public_jwks(key),
                    )
                    claims = {
                        "iss": client_id,
                        "sub": client_id,
                        "aud": provider.issuer,
                        "exp": int(provider.clock.now()) + 60,
                        "jti": f"jti-{alg}",
                    }
                    form = {
                        "client_assertion_type": (
                            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
                        ),
                        "client_assertion": jwt.encode({"alg": alg}, claims, key, algorithms=[alg]),
                    }
                response = await http.post(
                    "/bc-authorize",
                    data={"scope": "openid", "login_hint": "disco", **form},
                    auth=auth,
                )
                assert response.status_code == 200, (method, alg, response.text)


async def test_items_3_16_every_request_object_alg_is_accepted() -> None:
    provider, document = await setup()
    async with asgi_client(provider) as http:
        for alg in document["backchannel_authentication_request_signing_alg_values_supported"]:
            key = client_key(alg)
            client_id = f"rp-signed-{alg}"
            await register(provider, client_id, request_signing_alg=alg, jwks=public_jwks(key))
            now = int(provider.clock.now())
            claims = {
                "iss": client_id,
                "aud": provider.issuer,
                "iat": now,
                "nbf": now,
                "exp": now + 300,
                "jti": f"ro-{alg}",
                "scope": "openid",
                "login_hint": "disco",
            }
            response = await http.post(
                "/bc-authorize",
                data={"request": jwt.encode({"alg": alg}, claims, key, algorithms=[alg])},
                auth=(client_id, SECRET),
            )
            assert response.status_code == 200, (alg, response.text)


async def test_item_4_user_code_parameter_is_supported() -> None:
    provider, document = await setup()
    assert document["backchannel_user_code_parameter_supported"] is True
    await register(provider, "rp-code", user_code_parameter=True)
    async with asgi_client(provider) as http:
        missing = await start(http, "rp-code")
        right = await start(http, "rp-code", user_code="2468")
    assert missing.json()["error"] == "missing_user_code"
    assert right.status_code == 200


async def test_every_id_token_alg_signs_and_verifies_with_the_published_jwks() -> None:
    provider, document = await setup()
    async with asgi_client(provider) as http:
        jwks = KeySet.import_key_set((await http.get("/jwks")).json())
        for alg in document["id_token_signing_alg_values_supported"]:
            await register(provider, f"rp-{alg}", id_token_signed_response_alg=alg)
            tokens = await approve_and_redeem(http, f"rp-{alg}")
            decoded = jwt.decode(tokens["id_token"], jwks, algorithms=[alg])
            assert decoded.header["alg"] == alg
            assert decoded.claims["iss"] == document["issuer"]


async def test_every_scope_is_accepted_and_claims_stay_within_claims_supported() -> None:
    provider, document = await setup()
    await register(provider, "rp-all")
    scope = " ".join(document["scopes_supported"])
    async with asgi_client(provider) as http:
        tokens = await approve_and_redeem(http, "rp-all", scope=scope)
        userinfo = await http.get(
            "/userinfo", headers={"authorization": f"Bearer {tokens['access_token']}"}
        )
    assert set(tokens["scope"].split()) == set(document["scopes_supported"])
    id_claims = jwt.decode(tokens["id_token"], KeySet.import_key_set(provider.keys.jwks())).claims
    advertised = set(document["claims_supported"])
    assert set(id_claims) <= advertised
    assert set(userinfo.json()) <= advertised
    assert {"email", "phone_number", "address", "name"} <= set(userinfo.json())
    assert id_claims["exp"] > time.time() - 10**9  # a real number, not a placeholder


async def test_item_2_every_acr_value_is_what_a_device_approval_gives() -> None:
    """Issue 6 item 5: each advertised acr value, requested with ``acr_values`` and approved
    through the device SDK (with a WebAuthn assertion where user verification is needed),
    is the ``acr`` of the id_token."""
    w = await world()
    document = (await w.http.get("/.well-known/openid-configuration")).json()
    advertised = document["acr_values_supported"]
    assert advertised and len(set(advertised)) == len(advertised)
    device, authenticator = await registered(w)
    for acr in advertised:
        started = await w.bc_authorize(acr_values=acr)
        assert started.status_code == 200, started.text
        [consent] = await device.inbox()
        webauthn = None
        if consent.requires_user_verification:
            path = f"/requests/{consent.request_id}/webauthn/options"
            webauthn = authenticator.assert_(await device_post(w, device, path))
        assert await device.approve(consent, webauthn=webauthn) == "approved"
        tokens = await w.http.post(
            "/token",
            data={"grant_type": CIBA, "auth_req_id": started.json()["auth_req_id"]},
            headers={"authorization": basic(w.client.client_id)},
        )
        assert tokens.status_code == 200, tokens.text
        assert jose.peek_claims(tokens.json()["id_token"])["acr"] == acr, acr
