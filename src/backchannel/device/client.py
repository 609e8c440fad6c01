"""``DeviceClient``: a headless authentication device speaking the device API
(docs/authenticator-api.md). It keeps an ECDSA P-256 key, signs every decision with it,
and hashes the content it is about to show itself — it never trusts the server's hash."""

from __future__ import annotations

import base64
import hashlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from backchannel.protocol.jose import Signer

API = "/authenticator/api"
STATEMENT_TYP = "backchannel-decision+jwt"


class DeviceError(Exception):
    """The server refused a call; ``error`` and ``description`` come from its JSON body."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{status} {error}: {description}")
        self.status = status
        self.error = error
        self.description = description


@dataclass(slots=True, frozen=True)
class Consent:
    """One request to decide, as the server sent it; ``document`` is the parsed content."""

    request_id: str
    content: str
    content_hash: str
    expires_at: int
    requires_user_verification: bool = False
    binding_choices: tuple[str, ...] | None = None

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Consent:
        choices = value.get("binding_choices")
        return cls(
            request_id=value["request_id"],
            content=value["content"],
            content_hash=value["content_hash"],
            expires_at=int(value["expires_at"]),
            requires_user_verification=bool(value.get("requires_user_verification")),
            binding_choices=tuple(choices) if choices is not None else None,
        )

    @property
    def document(self) -> dict[str, Any]:
        value: dict[str, Any] = orjson.loads(self.content)
        return value

    def own_hash(self) -> str:
        return _b64(hashlib.sha256(self.content.encode("utf-8")).digest())


@dataclass(slots=True, frozen=True)
class DeviceEvent:
    kind: str  # "request" or "resolved"
    request_id: str


@dataclass(slots=True)
class DeviceClient:
    server: str
    device_id: str
    device_token: str
    private_key: ec.EllipticCurvePrivateKey
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=30))
    clock: Callable[[], float] = time.time

    # -- enrolment ---------------------------------------------------------------------------

    @classmethod
    async def enrol_with_code(
        cls, server: str, code: str, name: str = "CLI authenticator", **kwargs: Any
    ) -> DeviceClient:
        return await cls._enrol(server, {"method": "code", "code": code, "name": name}, **kwargs)

    @classmethod
    async def enrol_with_password(
        cls,
        server: str,
        username: str,
        password: str,
        name: str = "CLI authenticator",
        **kwargs: Any,
    ) -> DeviceClient:
        body = {"method": "password", "username": username, "password": password, "name": name}
        return await cls._enrol(server, body, **kwargs)

    @classmethod
    async def _enrol(
        cls,
        server: str,
        body: dict[str, Any],
        *,
        http: httpx.AsyncClient | None = None,
        private_key: ec.EllipticCurvePrivateKey | None = None,
        clock: Callable[[], float] = time.time,
    ) -> DeviceClient:
        key = private_key or ec.generate_private_key(ec.SECP256R1())
        client = http or httpx.AsyncClient(timeout=30)
        response = await client.post(
            _api(server, "/enrol"), json={**body, "public_jwk": public_jwk(key)}
        )
        data = _checked(response)
        return cls(server, data["device_id"], data["device_token"], key, client, clock)

    # -- receiving ---------------------------------------------------------------------------

    async def inbox(self) -> list[Consent]:
        data = _checked(await self.http.get(self._url("/inbox"), headers=self._auth()))
        return [Consent.from_json(entry) for entry in data["requests"]]

    async def get(self, request_id: str) -> Consent:
        for consent in await self.inbox():
            if consent.request_id == request_id:
                return consent
        raise DeviceError(404, "not_found", "no pending request with this id")

    async def listen(self) -> AsyncIterator[DeviceEvent]:
        """Server-Sent Events: one ``DeviceEvent`` per new or resolved request, forever."""
        headers = {**self._auth(), "accept": "text/event-stream"}
        timeout = httpx.Timeout(30, read=None)
        async with self.http.stream(
            "GET", self._url("/events"), headers=headers, timeout=timeout
        ) as response:
            if response.status_code != 200:
                await response.aread()
                _checked(response)
            kind = ""
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    kind = line.removeprefix("event:").strip()
                elif line.startswith("data:") and kind:
                    data = orjson.loads(line.removeprefix("data:").strip())
                    yield DeviceEvent(kind, data["request_id"])
                    kind = ""

    # -- deciding ----------------------------------------------------------------------------

    async def approve(
        self,
        consent: Consent,
        binding_choice: str | None = None,
        webauthn: dict[str, Any] | None = None,
    ) -> str:
        return await self._decide(consent, "approve", binding_choice, webauthn)

    async def deny(self, consent: Consent) -> str:
        return await self._decide(consent, "deny")

    async def report(self, consent: Consent) -> str:
        """ "This wasn't me": deny, and pause that client for this user."""
        return await self._decide(consent, "report")

    def statement(
        self,
        consent: Consent,
        decision: str,
        binding_choice: str | None = None,
        *,
        iat: int | None = None,
        jti: str | None = None,
    ) -> str:
        claims: dict[str, Any] = {
            "device_id": self.device_id,
            "request_id": consent.request_id,
            "content_hash": consent.own_hash(),
            "decision": decision,
            "iat": int(self.clock()) if iat is None else iat,
            "jti": jti or uuid.uuid4().hex,
        }
        if binding_choice is not None:
            claims["binding_choice"] = binding_choice
        return Signer(private_jwk(self.private_key, self.device_id), "ES256").sign(
            claims, typ=STATEMENT_TYP
        )

    async def send_statement(
        self, request_id: str, statement: str, webauthn: dict[str, Any] | None = None
    ) -> str:
        response = await self.http.post(
            self._url(f"/requests/{request_id}/decision"),
            json={"statement": statement, "webauthn": webauthn},
            headers=self._auth(),
        )
        result: str = _checked(response)["result"]
        return result

    async def _decide(
        self,
        consent: Consent,
        decision: str,
        binding_choice: str | None = None,
        webauthn: dict[str, Any] | None = None,
    ) -> str:
        statement = self.statement(consent, decision, binding_choice)
        return await self.send_statement(consent.request_id, statement, webauthn)

    # -- state -------------------------------------------------------------------------------

    def save(self, path: str | Path, key_file: str | Path | None = None) -> None:
        """The state as JSON (0600); the key as PEM, inside it or in ``key_file`` (0600)."""
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")
        state: dict[str, Any] = {
            "server": self.server,
            "device_id": self.device_id,
            "device_token": self.device_token,
        }
        if key_file is not None:
            _write_private(Path(key_file), pem.encode("ascii"))
            state["key_file"] = str(Path(key_file).resolve())
        else:
            state["key_pem"] = pem
        _write_private(Path(path), orjson.dumps(state, option=orjson.OPT_INDENT_2))

    @classmethod
    def load(cls, path: str | Path, http: httpx.AsyncClient | None = None) -> DeviceClient:
        state = orjson.loads(Path(path).read_bytes())
        pem = state.get("key_pem") or Path(state["key_file"]).read_text()
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the device key is not an EC key")
        return cls(
            state["server"],
            state["device_id"],
            state["device_token"],
            key,
            http or httpx.AsyncClient(timeout=30),
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    def _url(self, path: str) -> str:
        return _api(self.server, path)

    def _auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.device_token}"}


def public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64(numbers.x.to_bytes(32, "big")),
        "y": _b64(numbers.y.to_bytes(32, "big")),
    }


def private_jwk(key: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, str]:
    d = key.private_numbers().private_value.to_bytes(32, "big")
    return {**public_jwk(key), "d": _b64(d), "kid": kid}


def _api(server: str, path: str) -> str:
    return server.rstrip("/") + API + path


def _checked(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json() if response.content else {}
    except ValueError:
        data = {}
    if response.status_code >= 400:
        raise DeviceError(
            response.status_code,
            str(data.get("error", "error")),
            str(data.get("error_description", "")),
        )
    return data if isinstance(data, dict) else {}


def _write_private(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    os.chmod(path, 0o600)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
