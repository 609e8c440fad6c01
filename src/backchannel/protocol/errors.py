"""One exception class per wire error code, each carrying its HTTP status.

Errors are raised, never built by hand; ``web/`` alone turns them into responses.
Statuses follow the checklist: CIBA §13 (items 77-88) for the backchannel endpoint,
CIBA §11 / RFC 6749 §5.2 (items 100-109) for the token endpoint.
"""

from __future__ import annotations

import re
from typing import ClassVar

# CIBA §13 / RFC 6749: error_description is limited to %x20-21 / %x23-5B / %x5D-7E.
_DESCRIPTION_UNSAFE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


class OAuthError(Exception):
    """An OAuth/OpenID error with its wire code and HTTP status."""

    error: ClassVar[str] = "server_error"
    status: ClassVar[int] = 500

    def __init__(self, description: str = "", *, status: int | None = None) -> None:
        super().__init__(description or self.error)
        self.description = _DESCRIPTION_UNSAFE.sub("?", description)[:500]
        self.headers: dict[str, str] = {}
        if status is not None:
            self.status_override = status

    @property
    def http_status(self) -> int:
        return getattr(self, "status_override", self.status)

    def body(self) -> dict[str, str]:
        body = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        return body


class InvalidRequest(OAuthError):
    error = "invalid_request"
    status = 400


class InvalidClient(OAuthError):
    """401; web/ adds WWW-Authenticate when the client used the Authorization header."""

    error = "invalid_client"
    status = 401

    def __init__(self, description: str = "", *, used_basic: bool = False) -> None:
        super().__init__(description)
        if used_basic:
            self.headers["WWW-Authenticate"] = 'Basic realm="backchannel"'


class InvalidClientMetadata(OAuthError):
    error = "invalid_client_metadata"
    status = 400


class InvalidScope(OAuthError):
    error = "invalid_scope"
    status = 400


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"
    status = 400


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"
    status = 400


class UnsupportedTokenType(OAuthError):
    error = "unsupported_token_type"
    status = 400


class InvalidGrant(OAuthError):
    error = "invalid_grant"
    status = 400


class AccessDenied(OAuthError):
    """403 at the backchannel endpoint (CIBA §13); 400 at the token endpoint (CIBA §11)."""

    error = "access_denied"
    status = 403


class ExpiredLoginHintToken(OAuthError):
    error = "expired_login_hint_token"
    status = 400


class UnknownUserId(OAuthError):
    error = "unknown_user_id"
    status = 400


class MissingUserCode(OAuthError):
    error = "missing_user_code"
    status = 400


class InvalidUserCode(OAuthError):
    error = "invalid_user_code"
    status = 400


class InvalidBindingMessage(OAuthError):
    error = "invalid_binding_message"
    status = 400


class InvalidAuthorizationDetails(OAuthError):
    error = "invalid_authorization_details"
    status = 400


class AuthorizationPending(OAuthError):
    error = "authorization_pending"
    status = 400


class SlowDown(OAuthError):
    error = "slow_down"
    status = 400


class ExpiredToken(OAuthError):
    error = "expired_token"
    status = 400


class InvalidToken(OAuthError):
    """RFC 6750 §3.1: 401 with a WWW-Authenticate Bearer challenge."""

    error = "invalid_token"
    status = 401

    def __init__(self, description: str = "") -> None:
        super().__init__(description)
        challenge = 'Bearer error="invalid_token"'
        if self.description:
            challenge += f', error_description="{self.description}"'
        self.headers["WWW-Authenticate"] = challenge


class InsufficientScope(OAuthError):
    error = "insufficient_scope"
    status = 403


class NotFound(OAuthError):
    error = "not_found"
    status = 404


class Conflict(OAuthError):
    error = "conflict"
    status = 409


class MethodNotAllowed(OAuthError):
    error = "method_not_allowed"
    status = 405


class PayloadTooLarge(OAuthError):
    error = "payload_too_large"
    status = 413


class UnsupportedMediaType(OAuthError):
    """Wrong content type is reported as invalid_request (CIBA §7.1), with status 400."""

    error = "invalid_request"
    status = 400


class TemporarilyUnavailable(OAuthError):
    error = "temporarily_unavailable"
    status = 503
