"""Client metadata validation (checklist section A) and client secrets."""

from __future__ import annotations

from typing import Any

import pytest

from backchannel.protocol import jose
from backchannel.protocol.errors import InvalidClientMetadata
from backchannel.protocol.model import AuthMethod, DeliveryMode
from backchannel.protocol.registration import (
    client_from_metadata,
    client_metadata,
    generate_client_id,
    generate_client_secret,
    hash_client_secret,
)
from backchannel.protocol.secrets import RandomTokens, SecretHasher

NOW = 1_800_000_000.0
HASHER = SecretHasher(b"p" * 32)


def _private_jwk() -> dict[str, Any]:
    return jose.generate_private_jwk("ES256", "k1")


def _public_jwks() -> dict[str, Any]:
    return {"keys": [jose.public_jwk(_private_jwk())]}


def _metadata(**extra: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "client_id": "c_test",
        "client_name": "Test Client",
        "backchannel_token_delivery_mode": "poll",
    }
    values.update(extra)
    return values


def _register(dev_mode: bool = False, **extra: Any) -> Any:
    return client_from_metadata(_metadata(**extra), dev_mode=dev_mode, now=NOW)


def _rejected(field: str, dev_mode: bool = False, **extra: Any) -> str:
    with pytest.raises(InvalidClientMetadata) as caught:
        _register(dev_mode, **extra)
    message = str(caught.value)
    assert message.startswith(f"{field}: "), message
    assert caught.value.error == "invalid_client_metadata"
    assert caught.value.http_status == 400
    return message


def test_minimal_poll_client_gets_defaults() -> None:
    client = _register()
    assert client.client_id == "c_test"
    assert client.name == "Test Client"
    assert client.delivery_mode is DeliveryMode.POLL
    assert client.token_endpoint_auth_method is AuthMethod.CLIENT_SECRET_BASIC
    assert client.scopes == ("openid",)
    assert client.id_token_signed_response_alg == "RS256"
    assert client.notification_endpoint is None
    assert client.created_at == NOW
    assert client.updated_at == NOW


def test_item_13_delivery_mode_is_required() -> None:
    with pytest.raises(InvalidClientMetadata, match=r"^backchannel_token_delivery_mode: "):
        client_from_metadata({"client_id": "c_x", "client_name": "X"}, dev_mode=False, now=NOW)


def test_item_13_delivery_mode_must_be_poll_ping_or_push() -> None:
    message = _rejected("backchannel_token_delivery_mode", backchannel_token_delivery_mode="pull")
    assert "poll" in message


@pytest.mark.parametrize("mode", ["ping", "push"])
def test_item_14_ping_and_push_need_a_notification_endpoint(mode: str) -> None:
    _rejected("backchannel_client_notification_endpoint", backchannel_token_delivery_mode=mode)
    client = _register(
        backchannel_token_delivery_mode=mode,
        backchannel_client_notification_endpoint="https://rp.example/cb",
    )
    assert client.delivery_mode == mode
    assert client.notification_endpoint == "https://rp.example/cb"


def test_item_14_notification_endpoint_must_be_https() -> None:
    message = _rejected(
        "backchannel_client_notification_endpoint",
        backchannel_token_delivery_mode="ping",
        backchannel_client_notification_endpoint="http://rp.example/cb",
    )
    assert "https" in message


def test_item_14_plain_http_only_for_loopback_in_dev_mode() -> None:
    loopback = {
        "backchannel_token_delivery_mode": "ping",
        "backchannel_client_notification_endpoint": "http://127.0.0.1:9000/cb",
    }
    _rejected("backchannel_client_notification_endpoint", dev_mode=False, **loopback)
    assert _register(dev_mode=True, **loopback).notification_endpoint.startswith("http://")
    _rejected(
        "backchannel_client_notification_endpoint",
        dev_mode=True,
        backchannel_token_delivery_mode="ping",
        backchannel_client_notification_endpoint="http://rp.example/cb",
    )


def test_poll_client_has_no_notification_endpoint() -> None:
    _rejected(
        "backchannel_client_notification_endpoint",
        backchannel_client_notification_endpoint="https://rp.example/cb",
    )


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://rp.example/cb#frag", "fragment"),
        ("https://user:pw@rp.example/cb", "user information"),
        ("/relative/cb", "absolute"),
        ("ftp://rp.example/cb", "absolute"),
    ],
)
def test_urls_are_absolute_without_fragment_or_userinfo(url: str, problem: str) -> None:
    message = _rejected(
        "backchannel_client_notification_endpoint",
        backchannel_token_delivery_mode="push",
        backchannel_client_notification_endpoint=url,
    )
    assert problem in message
    assert problem in _rejected("logo_uri", logo_uri=url)


def test_item_23_jwks_and_jwks_uri_together_are_refused() -> None:
    message = _rejected("jwks", jwks=_public_jwks(), jwks_uri="https://rp.example/jwks")
    assert "jwks_uri" in message


def test_item_23_private_keys_in_jwks_are_refused() -> None:
    message = _rejected("jwks", jwks={"keys": [_private_jwk()]})
    assert "public keys only" in message


def test_item_23_symmetric_keys_in_jwks_are_refused() -> None:
    _rejected("jwks", jwks={"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]})


def test_jwks_must_be_a_usable_key_set() -> None:
    _rejected("jwks", jwks={"keys": []})
    _rejected("jwks", jwks={"keys": [{"kty": "RSA", "n": "x"}]})


def test_jwks_uri_must_be_https() -> None:
    _rejected("jwks_uri", jwks_uri="http://rp.example/jwks")


def test_private_key_jwt_needs_keys() -> None:
    _rejected("token_endpoint_auth_method", token_endpoint_auth_method="private_key_jwt")
    client = _register(token_endpoint_auth_method="private_key_jwt", jwks=_public_jwks())
    assert client.token_endpoint_auth_method is AuthMethod.PRIVATE_KEY_JWT
    assert client.jwks is not None


def test_unknown_auth_method_is_refused() -> None:
    _rejected("token_endpoint_auth_method", token_endpoint_auth_method="none")


@pytest.mark.parametrize("alg", ["HS256", "none", "RS384"])
def test_items_16_55_request_signing_alg_is_asymmetric_and_supported(alg: str) -> None:
    _rejected(
        "backchannel_authentication_request_signing_alg",
        backchannel_authentication_request_signing_alg=alg,
        jwks=_public_jwks(),
    )


def test_item_16_request_signing_alg_needs_keys() -> None:
    message = _rejected(
        "backchannel_authentication_request_signing_alg",
        backchannel_authentication_request_signing_alg="ES256",
    )
    assert "jwks" in message
    client = _register(
        backchannel_authentication_request_signing_alg="ES256", jwks_uri="https://rp.example/j"
    )
    assert client.request_signing_alg == "ES256"


def test_id_token_alg_is_one_of_the_signing_algorithms() -> None:
    assert _register(id_token_signed_response_alg="ES256").id_token_signed_response_alg == "ES256"
    _rejected("id_token_signed_response_alg", id_token_signed_response_alg="HS256")


def test_scope_must_include_openid_and_be_known() -> None:
    assert _register(scope="openid profile email").scopes == ("openid", "profile", "email")
    assert "openid" in _rejected("scope", scope="profile email")
    assert "'payments'" in _rejected("scope", scope="openid payments")


def test_item_15_grant_types_when_sent_include_ciba_for_poll() -> None:
    _rejected("grant_types", grant_types=["refresh_token"])
    assert _register(grant_types=["urn:openid:params:grant-type:ciba"]).client_id == "c_test"


def test_item_204_client_id_must_not_look_like_a_subject() -> None:
    assert "u_" in _rejected("client_id", client_id="u_abcdef")


def test_client_id_and_name_are_required() -> None:
    _rejected("client_id", client_id="")
    _rejected("client_name", client_name="  ")
    _rejected("client_id", client_id="has space")


def test_type_errors_name_the_field() -> None:
    _rejected("backchannel_user_code_parameter", backchannel_user_code_parameter="yes")
    _rejected("client_name", client_name=42)
    _rejected("authorization_details_types", authorization_details_types="payment")


def test_login_hint_token_issuers_hold_public_keys_only() -> None:
    client = _register(login_hint_token_issuers={"https://idp.example": _public_jwks()})
    assert list(client.hint_token_issuers) == ["https://idp.example"]
    message = _rejected(
        "login_hint_token_issuers.https://idp.example",
        login_hint_token_issuers={"https://idp.example": {"keys": [_private_jwk()]}},
    )
    assert "public keys only" in message


def test_unknown_fields_are_ignored() -> None:
    assert _register(software_statement="whatever").client_id == "c_test"


def test_metadata_round_trips_and_never_shows_the_secret_hash() -> None:
    client = _register(
        token_endpoint_auth_method="client_secret_post",
        scope="openid email",
        backchannel_user_code_parameter=True,
        authorization_details_types=["payment_initiation"],
        logo_uri="https://rp.example/logo.png",
    )
    client.secret_hash = hash_client_secret(HASHER, "s" * 43, generated=True)
    data = client_metadata(client)
    assert "secret_hash" not in data
    assert client.secret_hash not in repr(data)
    assert data["scope"] == "openid email"
    assert data["grant_types"] == ["urn:openid:params:grant-type:ciba", "refresh_token"]
    again = client_from_metadata(data, dev_mode=False, now=NOW)
    assert client_metadata(again) == data


def test_update_keeps_other_fields_and_the_secret() -> None:
    client = _register(scope="openid email", logo_uri="https://rp.example/logo.png")
    client.secret_hash = "hmac:abc"
    updated = client_from_metadata(
        {"client_name": "Renamed", "logo_uri": None}, dev_mode=False, now=NOW + 5, existing=client
    )
    assert updated.name == "Renamed"
    assert updated.logo_uri is None
    assert updated.scopes == ("openid", "email")
    assert updated.secret_hash == "hmac:abc"
    assert updated.created_at == NOW
    assert updated.updated_at == NOW + 5


def test_update_cannot_change_the_client_id() -> None:
    client = _register()
    with pytest.raises(InvalidClientMetadata, match=r"^client_id: "):
        client_from_metadata({"client_id": "c_other"}, dev_mode=False, now=NOW, existing=client)


def test_update_to_poll_drops_the_notification_endpoint() -> None:
    ping = _register(
        backchannel_token_delivery_mode="ping",
        backchannel_client_notification_endpoint="https://rp.example/cb",
    )
    poll = client_from_metadata(
        {"backchannel_token_delivery_mode": "poll"}, dev_mode=False, now=NOW, existing=ping
    )
    assert poll.delivery_mode is DeliveryMode.POLL
    assert poll.notification_endpoint is None


def test_item_15_update_from_push_to_poll_recomputes_grant_types() -> None:
    push = _register(
        backchannel_token_delivery_mode="push",
        backchannel_client_notification_endpoint="https://rp.example/cb",
    )
    assert "urn:openid:params:grant-type:ciba" not in client_metadata(push)["grant_types"]
    poll = client_from_metadata(
        {"backchannel_token_delivery_mode": "poll"}, dev_mode=False, now=NOW, existing=push
    )
    assert "urn:openid:params:grant-type:ciba" in client_metadata(poll)["grant_types"]


def test_update_setting_jwks_replaces_jwks_uri() -> None:
    client = _register(jwks_uri="https://rp.example/jwks")
    updated = client_from_metadata(
        {"jwks": _public_jwks()}, dev_mode=False, now=NOW, existing=client
    )
    assert updated.jwks_uri is None
    assert updated.jwks is not None


def test_update_to_private_key_jwt_drops_the_secret() -> None:
    client = _register(jwks=_public_jwks())
    client.secret_hash = "hmac:abc"
    updated = client_from_metadata(
        {"token_endpoint_auth_method": "private_key_jwt"}, dev_mode=False, now=NOW, existing=client
    )
    assert updated.secret_hash is None


def test_generated_ids_and_secrets() -> None:
    random = RandomTokens()
    client_id = generate_client_id(random)
    assert client_id.startswith("c_")
    secret = generate_client_secret(random)
    assert len(secret) >= 43  # 32 bytes, base64url
    assert secret != generate_client_secret(random)


def test_generated_secrets_hash_fast_operator_secrets_hash_slow() -> None:
    fast = hash_client_secret(HASHER, "generated-secret", generated=True)
    slow = hash_client_secret(HASHER, "operator-secret", generated=False)
    assert fast.startswith("hmac:")
    assert slow.startswith("argon2:")
    assert HASHER.verify("generated-secret", fast)
    assert HASHER.verify("operator-secret", slow)
    assert not HASHER.verify("wrong", slow)
