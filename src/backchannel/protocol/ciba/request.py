"""Reading a backchannel authentication request (CIBA §7.1) into ``BackchannelParams``.

The same reader serves form fields (``read_form``) and the claims of a verified signed
request (``read_claims``). Policies chosen here:

- ``scope`` must contain ``openid`` (item 32): Backchannel is an OpenID Provider and does
  not offer plain-OAuth CIBA, so a request without it gets ``invalid_scope``.
- Every scope value must be one the client registered (``client.scopes``). Anything else
  (unknown, not allowed, malformed) is refused with ``invalid_scope`` naming the values;
  nothing is silently dropped (items 33, 79).
- ``requested_expiry`` is a positive integer of seconds: a string in a form, a JSON number
  or string in a signed request (P3). Anything else is ``invalid_request`` (item 48).
  Values above ``ciba.max_expires_in`` are capped to it, not refused (item 47).
- Exactly one of the three hints (P1); repeated parameters are ``invalid_request`` (item 78).
- ``client_notification_token`` is required for ping and push clients, at most 1024
  characters of RFC 6750 b64token (items 34, 35); poll clients' tokens are ignored.
- ``authorization_details`` (RFC 9396) is parsed and minimally checked; its full
  processing belongs to a later issue.
- Parameters Backchannel does not know are ignored (item 49).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import orjson

from backchannel.protocol.ciba.authorization_details import check_entry
from backchannel.protocol.errors import (
    InvalidAuthorizationDetails,
    InvalidRequest,
    InvalidScope,
    UnauthorizedClient,
)
from backchannel.protocol.http import Form
from backchannel.protocol.model import JSON, Client, DeliveryMode
from backchannel.settings import CibaSettings

HintKind = Literal["login_hint", "id_token_hint", "login_hint_token"]
HINTS: tuple[HintKind, ...] = ("login_hint", "id_token_hint", "login_hint_token")
PARAMETERS = (
    "scope",
    "client_notification_token",
    "acr_values",
    *HINTS,
    "binding_message",
    "user_code",
    "requested_expiry",
    "authorization_details",
    "request_context",
)
NOTIFICATION_TOKEN_MAX_LENGTH = 1024
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
_DIGITS = re.compile(r"[0-9]+")
# More digits than this is far beyond any max_expires_in: no need to convert them.
_MAX_EXPIRY_DIGITS = 9  # _HUGE_EXPIRY has one more digit
_HUGE_EXPIRY = 1_000_000_000


@dataclass(slots=True, frozen=True)
class BackchannelParams:
    """The authentication request parameters, checked for shape. Exactly one hint is set."""

    scope: tuple[str, ...]
    login_hint: str | None = None
    id_token_hint: str | None = None
    login_hint_token: str | None = None
    binding_message: str | None = None
    user_code: str | None = None
    requested_expiry: int | None = None  # already capped to ciba.max_expires_in
    acr_values: tuple[str, ...] = ()
    client_notification_token: str | None = None
    authorization_details: list[JSON] | None = None
    request_context: object = None

    @property
    def hint_kind(self) -> HintKind:
        for kind in HINTS:
            if getattr(self, kind) is not None:
                return kind
        raise AssertionError("BackchannelParams always holds one hint")

    @property
    def hint(self) -> str:
        value: str = getattr(self, self.hint_kind)
        return value


def ensure_ciba_client(client: Client) -> None:
    """Item 69/82: only clients registered for a CIBA delivery mode may use the endpoint."""
    if client.delivery_mode not in (DeliveryMode.POLL, DeliveryMode.PING, DeliveryMode.PUSH):
        raise UnauthorizedClient("the client is not registered for CIBA")
    if client.delivery_mode is not DeliveryMode.POLL and not client.notification_endpoint:
        raise UnauthorizedClient("ping and push clients need a client_notification_endpoint")


def read_form(form: Form, client: Client, settings: CibaSettings) -> BackchannelParams:
    values = {name: form.one(name) for name in PARAMETERS}
    return read_values(values, client, settings)


def read_claims(claims: JSON, client: Client, settings: CibaSettings) -> BackchannelParams:
    return read_values(claims, client, settings)


def read_values(
    values: Mapping[str, object], client: Client, settings: CibaSettings
) -> BackchannelParams:
    _check_single_hint(values)
    return BackchannelParams(
        scope=_scope(values, client),
        login_hint=_text(values, "login_hint"),
        id_token_hint=_text(values, "id_token_hint"),
        login_hint_token=_text(values, "login_hint_token"),
        binding_message=_text(values, "binding_message"),
        user_code=_text(values, "user_code"),
        requested_expiry=_requested_expiry(values.get("requested_expiry"), settings),
        acr_values=_space_separated(_text(values, "acr_values")),
        client_notification_token=_notification_token(values, client),
        authorization_details=_authorization_details(values.get("authorization_details"), client),
        request_context=values.get("request_context"),
    )


def _text(values: Mapping[str, object], name: str) -> str | None:
    value = values.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a string")
    return value


def _check_single_hint(values: Mapping[str, object]) -> None:
    present = [kind for kind in HINTS if _text(values, kind) is not None]
    if len(present) != 1:
        raise InvalidRequest("send exactly one of login_hint, id_token_hint, login_hint_token")


def _space_separated(value: str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return tuple(dict.fromkeys(part for part in value.split(" ") if part))


def _scope(values: Mapping[str, object], client: Client) -> tuple[str, ...]:
    value = _text(values, "scope")
    if value is None:
        raise InvalidRequest("missing parameter scope")
    scopes = _space_separated(value)
    malformed = [s for s in scopes if not _SCOPE_TOKEN.fullmatch(s)]
    if malformed or not scopes:
        raise InvalidScope("scope is malformed")
    if "openid" not in scopes:
        raise InvalidScope("scope must include openid")
    refused = [s for s in scopes if s not in client.scopes]
    if refused:
        raise InvalidScope(f"scope not allowed for this client: {' '.join(refused)}")
    return scopes


def _requested_expiry(value: object, settings: CibaSettings) -> int | None:
    if value is None or value == "":
        return None
    seconds = _positive_integer(value)
    if seconds is None:
        raise InvalidRequest("requested_expiry must be a positive integer of seconds")
    return min(seconds, settings.max_expires_in)


def _positive_integer(value: object) -> int | None:
    """A positive integer from a digit string or a JSON number; None when it is not one.
    Huge values come back as a huge number without converting thousands of digits."""
    if isinstance(value, str):
        if not _DIGITS.fullmatch(value):
            return None
        digits = value.lstrip("0")
        if len(digits) > _MAX_EXPIRY_DIGITS:
            return _HUGE_EXPIRY
        number = int(digits or "0")
    elif isinstance(value, bool):
        return None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    else:
        return None
    return number if number > 0 else None


def _notification_token(values: Mapping[str, object], client: Client) -> str | None:
    if client.delivery_mode is DeliveryMode.POLL:
        return None
    token = _text(values, "client_notification_token")
    if token is None:
        raise InvalidRequest("ping and push clients must send client_notification_token")
    if len(token) > NOTIFICATION_TOKEN_MAX_LENGTH or not _B64TOKEN.fullmatch(token):
        raise InvalidRequest("client_notification_token must be an RFC 6750 token of <= 1024")
    return token


def _authorization_details(value: object, client: Client) -> list[JSON] | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise InvalidAuthorizationDetails("authorization_details is not JSON") from None
    if not isinstance(value, list) or not value:
        raise InvalidAuthorizationDetails("authorization_details must be a non-empty array")
    details: list[JSON] = []
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
            raise InvalidAuthorizationDetails("each authorization_details entry needs a type")
        if entry["type"] not in client.authorization_details_types:
            raise InvalidAuthorizationDetails(
                f"authorization_details type {entry['type']} is not allowed for this client"
            )
        check_entry(entry)  # type-specific rules (payment_initiation, item 174)
        details.append(entry)
    return details
