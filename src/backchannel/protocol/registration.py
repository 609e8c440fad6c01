"""Client metadata: validation of OIDC-registration-style fields into a ``model.Client``.

Used by ``backchannel clients`` and the admin API. Every problem raises
``InvalidClientMetadata("<field>: <what is wrong>")`` (checklist item 25) so the operator
sees which field to fix. Unknown fields are ignored, as OIDR §2 asks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

from backchannel.protocol import jose
from backchannel.protocol.errors import InvalidClientMetadata
from backchannel.protocol.model import JSON, AuthMethod, Client, DeliveryMode
from backchannel.protocol.ports import TokenSource
from backchannel.protocol.secrets import SecretHasher
from backchannel.settings import is_loopback_host

CIBA_GRANT = "urn:openid:params:grant-type:ciba"
KNOWN_SCOPES = ("openid", "profile", "email", "phone", "address", "offline_access")
REQUEST_SIGNING_ALGS = ("PS256", "ES256", "RS256")
ID_TOKEN_ALGS = ("RS256", "PS256", "ES256")
SECRET_METHODS = (AuthMethod.CLIENT_SECRET_BASIC, AuthMethod.CLIENT_SECRET_POST)
CLIENT_ID_PREFIX = "c_"
# Subjects of the built-in directory start with this; client ids must not (item 204).
SUBJECT_PREFIX = "u_"
_MAX_CLIENT_ID = 128
# Fields that replace each other: setting one in an update drops the others.
_EXCLUSIVE = (("jwks", "jwks_uri"),)
# Output-only fields of client_metadata(): recomputed, never carried into an update.
_DERIVED = ("grant_types", "client_id_issued_at", "updated_at")
E = TypeVar("E", AuthMethod, DeliveryMode)


def client_from_metadata(
    metadata: Mapping[str, Any], *, dev_mode: bool, now: float, existing: Client | None = None
) -> Client:
    """A validated client. With ``existing``, ``metadata`` holds only the changed fields
    (a ``None`` value unsets one) and the rest is kept."""
    merged = _merge(existing, metadata) if existing else dict(metadata)
    values = {name: value for name, value in merged.items() if value is not None}
    return _build(values, dev_mode=dev_mode, now=now, existing=existing)


def client_metadata(client: Client) -> JSON:
    """The client as registration metadata (never the secret hash)."""
    data: JSON = {
        "client_id": client.client_id,
        "client_name": client.name,
        "token_endpoint_auth_method": str(client.token_endpoint_auth_method),
        "grant_types": _grant_types(client),
        "backchannel_token_delivery_mode": str(client.delivery_mode),
        "backchannel_client_notification_endpoint": client.notification_endpoint,
        "backchannel_user_code_parameter": client.user_code_parameter,
        "backchannel_authentication_request_signing_alg": client.request_signing_alg,
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
        "scope": " ".join(client.scopes),
        "logo_uri": client.logo_uri,
        "policy_uri": client.policy_uri,
        "jwks": client.jwks,
        "jwks_uri": client.jwks_uri,
        "login_hint_token_issuers": dict(client.hint_token_issuers) or None,
        "authorization_details_types": list(client.authorization_details_types) or None,
        "binding_code_choice": client.binding_code_choice or None,
        "require_user_verification": client.require_user_verification or None,
        "client_id_issued_at": int(client.created_at),
        "updated_at": int(client.updated_at),
    }
    return {name: value for name, value in data.items() if value is not None}


def uses_secret(client: Client) -> bool:
    return client.token_endpoint_auth_method in SECRET_METHODS


def generate_client_id(random: TokenSource) -> str:
    return CLIENT_ID_PREFIX + random.token(16)


def generate_client_secret(random: TokenSource) -> str:
    """256 bits of entropy: safe to store under the fast keyed hash."""
    return random.token(32)


def hash_client_secret(hasher: SecretHasher, secret: str, *, generated: bool) -> str:
    """Generated secrets are high-entropy (fast keyed hash); an operator's choice is not."""
    return hasher.fast(secret) if generated else hasher.slow(secret)


def _merge(existing: Client, changes: Mapping[str, Any]) -> dict[str, Any]:
    merged = client_metadata(existing)
    for name in _DERIVED:
        del merged[name]
    for group in _EXCLUSIVE:
        if any(changes.get(name) is not None for name in group):
            for name in group:
                merged.pop(name, None)
    if changes.get("backchannel_token_delivery_mode") == DeliveryMode.POLL:
        merged.pop("backchannel_client_notification_endpoint", None)
    merged.update(changes)
    return merged


def _build(
    values: dict[str, Any], *, dev_mode: bool, now: float, existing: Client | None
) -> Client:
    client_id = _client_id(values, existing)
    method = _enum(values, "token_endpoint_auth_method", AuthMethod, AuthMethod.CLIENT_SECRET_BASIC)
    mode = _delivery_mode(values)
    jwks, jwks_uri = _key_source(values, dev_mode)
    client = Client(
        client_id=client_id,
        name=_client_name(values),
        token_endpoint_auth_method=method,
        secret_hash=existing.secret_hash if existing and method in SECRET_METHODS else None,
        delivery_mode=mode,
        notification_endpoint=_notification_endpoint(values, mode, dev_mode),
        logo_uri=_optional_url(values, "logo_uri", dev_mode, https_only=False),
        policy_uri=_optional_url(values, "policy_uri", dev_mode, https_only=False),
        jwks=jwks,
        jwks_uri=jwks_uri,
        user_code_parameter=_bool(values, "backchannel_user_code_parameter"),
        request_signing_alg=_request_signing_alg(values),
        id_token_signed_response_alg=_choice(values, "id_token_signed_response_alg", ID_TOKEN_ALGS)
        or "RS256",
        scopes=_scopes(values),
        hint_token_issuers=_hint_token_issuers(values),
        authorization_details_types=_string_list(values, "authorization_details_types"),
        created_at=existing.created_at if existing else now,
        updated_at=now,
        binding_code_choice=_bool(values, "binding_code_choice"),
        require_user_verification=_bool(values, "require_user_verification"),
    )
    _check_consistency(client, values)
    return client


def _check_consistency(client: Client, values: Mapping[str, Any]) -> None:
    has_keys = client.jwks is not None or client.jwks_uri is not None
    if client.token_endpoint_auth_method is AuthMethod.PRIVATE_KEY_JWT and not has_keys:
        _fail("token_endpoint_auth_method", "private_key_jwt needs jwks or jwks_uri")
    if client.request_signing_alg and not has_keys:
        _fail("backchannel_authentication_request_signing_alg", "needs jwks or jwks_uri")
    _check_grant_types(client, values.get("grant_types"))


def _check_grant_types(client: Client, grant_types: Any) -> None:
    """Item 15: poll and ping clients use the CIBA grant; if grant_types is sent, it says so."""
    if grant_types is None:
        return
    if not isinstance(grant_types, list) or not all(isinstance(g, str) for g in grant_types):
        _fail("grant_types", "must be a list of strings")
    if client.delivery_mode is not DeliveryMode.PUSH and CIBA_GRANT not in grant_types:
        _fail("grant_types", f"poll and ping clients must include {CIBA_GRANT}")


def _grant_types(client: Client) -> list[str]:
    grants = [] if client.delivery_mode is DeliveryMode.PUSH else [CIBA_GRANT]
    return [*grants, "refresh_token"]


def _client_id(values: Mapping[str, Any], existing: Client | None) -> str:
    value = _string(values, "client_id")
    if existing is not None:
        if value != existing.client_id:
            _fail("client_id", "cannot be changed")
        return value
    if not value:
        _fail("client_id", "is required")
    if len(value) > _MAX_CLIENT_ID or not all(c.isascii() and c.isprintable() for c in value):
        _fail("client_id", f"must be at most {_MAX_CLIENT_ID} printable ASCII characters")
    if " " in value or ":" in value:
        _fail("client_id", "must not contain spaces or colons")
    if value.startswith(SUBJECT_PREFIX):
        _fail("client_id", f"must not start with {SUBJECT_PREFIX!r}, which user subjects use")
    return value


def _client_name(values: Mapping[str, Any]) -> str:
    name = _string(values, "client_name").strip()
    if not name:
        _fail("client_name", "is required")
    if len(name) > 200:
        _fail("client_name", "must be at most 200 characters")
    return name


def _delivery_mode(values: Mapping[str, Any]) -> DeliveryMode:
    """Item 13: exactly one of poll, ping, push, and it must be given."""
    if "backchannel_token_delivery_mode" not in values:
        _fail("backchannel_token_delivery_mode", "is required (poll, ping or push)")
    return _enum(values, "backchannel_token_delivery_mode", DeliveryMode, DeliveryMode.POLL)


def _notification_endpoint(values: Mapping[str, Any], mode: DeliveryMode, dev: bool) -> str | None:
    """Item 14: ping and push clients register an https notification endpoint."""
    field = "backchannel_client_notification_endpoint"
    endpoint = _optional_url(values, field, dev, https_only=True)
    if mode is DeliveryMode.POLL:
        if endpoint is not None:
            _fail(field, "only ping and push clients have a notification endpoint")
        return None
    if endpoint is None:
        _fail(field, f"is required for {mode} mode")
    return endpoint


def _key_source(values: Mapping[str, Any], dev_mode: bool) -> tuple[JSON | None, str | None]:
    """Item 23: jwks or jwks_uri, never both; an inline set holds public keys only."""
    jwks_uri = _optional_url(values, "jwks_uri", dev_mode, https_only=True)
    jwks = values.get("jwks")
    if jwks is not None and jwks_uri is not None:
        _fail("jwks", "jwks and jwks_uri must not both be set")
    if jwks is not None:
        _check_public_jwks("jwks", jwks)
    return jwks, jwks_uri


def _check_public_jwks(field: str, jwks: Any) -> None:
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        _fail(field, "must be a JWK set: an object with a non-empty keys list")
    if jose.has_private_or_symmetric_keys(jwks):
        _fail(field, "must hold public keys only (no private or symmetric keys)")
    try:
        jose.Verifier(jwks)
    except jose.JoseError as exc:
        _fail(field, str(exc))


def _request_signing_alg(values: Mapping[str, Any]) -> str | None:
    """Items 16, 55: signed requests use an asymmetric algorithm only."""
    return _choice(values, "backchannel_authentication_request_signing_alg", REQUEST_SIGNING_ALGS)


def _scopes(values: Mapping[str, Any]) -> tuple[str, ...]:
    scopes = _string(values, "scope", "openid").split()
    unknown = [s for s in scopes if s not in KNOWN_SCOPES]
    if unknown:
        _fail("scope", f"unknown scope {unknown[0]!r} (known: {' '.join(KNOWN_SCOPES)})")
    if "openid" not in scopes:
        _fail("scope", "must include openid")
    return tuple(dict.fromkeys(scopes))


def _hint_token_issuers(values: Mapping[str, Any]) -> dict[str, JSON]:
    field = "login_hint_token_issuers"
    issuers = values.get(field, {})
    if not isinstance(issuers, dict):
        _fail(field, "must be an object mapping issuer to JWK set")
    for issuer, jwks in issuers.items():
        if not isinstance(issuer, str) or not issuer.strip():
            _fail(field, "issuer names must be non-empty strings")
        _check_public_jwks(f"{field}.{issuer}", jwks)
    return dict(issuers)


def _optional_url(
    values: Mapping[str, Any], field: str, dev: bool, *, https_only: bool
) -> str | None:
    if field not in values:
        return None
    url = _string(values, field)
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        _fail(field, "must be an absolute https URL" if https_only else "must be an absolute URL")
    if parts.fragment or "#" in url:
        _fail(field, "must not have a fragment")
    if parts.username is not None or parts.password is not None:
        _fail(field, "must not contain user information")
    if https_only and parts.scheme == "http" and not (dev and is_loopback_host(parts.hostname)):
        _fail(field, "must use https (plain http only for a loopback host in dev mode)")
    return url


def _string(values: Mapping[str, Any], field: str, default: str = "") -> str:
    value = values.get(field, default)
    if not isinstance(value, str):
        _fail(field, "must be a string")
    return value


def _bool(values: Mapping[str, Any], field: str) -> bool:
    value = values.get(field, False)
    if not isinstance(value, bool):
        _fail(field, "must be true or false")
    return value


def _choice(values: Mapping[str, Any], field: str, allowed: tuple[str, ...]) -> str | None:
    if field not in values:
        return None
    value = _string(values, field)
    if value not in allowed:
        _fail(field, f"must be one of {', '.join(allowed)}")
    return value


def _enum(values: Mapping[str, Any], field: str, kind: type[E], default: E) -> E:
    if field not in values:
        return default
    value = values[field]
    try:
        return kind(value)
    except ValueError:
        _fail(field, f"must be one of {', '.join(member.value for member in kind)}")


def _string_list(values: Mapping[str, Any], field: str) -> tuple[str, ...]:
    value = values.get(field, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        _fail(field, "must be a list of non-empty strings")
    return tuple(dict.fromkeys(value))


def _fail(field: str, problem: str) -> NoReturn:
    raise InvalidClientMetadata(f"{field}: {problem}")
