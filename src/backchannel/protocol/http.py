"""Framework-free HTTP request and response values.

``web/`` turns a Starlette request into an ``HttpRequest`` and an ``HttpResponse`` (or an
``OAuthError``) back into a Starlette response; endpoints in ``protocol/endpoints`` see only
these, so every protocol rule is testable without a server.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from backchannel.protocol.errors import InvalidRequest, UnsupportedMediaType

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass(slots=True, frozen=True)
class HttpRequest:
    method: str
    url: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes = b""
    query: str = ""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def form(self) -> Form:
        """The body as a strict form: right content type, UTF-8, well-formed pairs."""
        content_type = (self.header("content-type") or "").split(";")[0].strip().lower()
        if content_type != FORM_CONTENT_TYPE:
            raise UnsupportedMediaType(f"the body must be {FORM_CONTENT_TYPE}")
        return Form.parse(self.body)

    def query_form(self) -> Form:
        return Form.parse(self.query.encode("latin-1", "replace"))

    def bearer_token(self) -> str | None:
        """RFC 6750 §2.1 Authorization: Bearer <token>."""
        value = self.header("authorization")
        if not value:
            return None
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()

    def basic_credentials(self) -> tuple[str, str] | None:
        """RFC 6749 §2.3.1: form-urlencoded id and secret inside HTTP Basic."""
        value = self.header("authorization")
        if not value:
            return None
        scheme, _, encoded = value.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidRequest("malformed Basic credentials") from None
        user, sep, password = decoded.partition(":")
        if not sep:
            raise InvalidRequest("malformed Basic credentials")
        return unquote(user), unquote(password)


@dataclass(slots=True)
class Form:
    """Form parameters. ``one`` refuses repeated parameters (RFC 6749 §3.1, CIBA §13)."""

    pairs: list[tuple[str, str]]
    _index: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def parse(cls, body: bytes) -> Form:
        try:
            text = body.decode("utf-8")
            pairs = parse_qsl(
                text,
                keep_blank_values=True,
                strict_parsing=bool(text),
                errors="strict",
                max_num_fields=200,
            )
        except UnicodeDecodeError:
            raise InvalidRequest("the body is not valid UTF-8") from None
        except ValueError:
            raise InvalidRequest("the body is not a well-formed form") from None
        form = cls(pairs)
        for name, value in pairs:
            if "\x00" in name or "\x00" in value:
                raise InvalidRequest("NUL characters are not allowed")
            form._index.setdefault(name, []).append(value)
        return form

    def one(self, name: str) -> str | None:
        """The single value of ``name``; empty counts as absent (RFC 6749 §3.1)."""
        values = self._index.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise InvalidRequest(f"parameter {name} is repeated")
        return values[0] or None

    def required(self, name: str) -> str:
        value = self.one(name)
        if value is None:
            raise InvalidRequest(f"missing parameter {name}")
        return value

    def names(self) -> set[str]:
        return set(self._index)

    def __contains__(self, name: object) -> bool:
        return name in self._index


@dataclass(slots=True)
class HttpResponse:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str = "application/json"

    @classmethod
    def json(cls, body: Any, status: int = 200, *, no_store: bool = False) -> HttpResponse:
        return cls(status=status, body=body, headers=dict(NO_STORE) if no_store else {})
