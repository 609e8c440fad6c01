"""A software WebAuthn authenticator (packed "none" attestation, P-256) for py_webauthn on
the server, and a device that registered it (issue 6 item 5)."""

from __future__ import annotations

import base64
import hashlib
import os
from typing import Any

import cbor2
import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from backchannel.device import DeviceClient
from tests.authenticator.support import World
from tests.support.provider import ISSUER

RP_ID = "op.example.test"
FLAGS_UP_UV = 0x01 | 0x04


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SoftAuthenticator:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(16)
        self.count = 0

    def _client_data(self, kind: str, challenge: str) -> bytes:
        return orjson.dumps(
            {"type": kind, "challenge": challenge, "origin": ISSUER, "crossOrigin": False}
        )

    def register(self, options: dict[str, Any]) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()
        cose = {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big")}  # fmt: skip
        attested = bytes(16) + len(self.credential_id).to_bytes(2, "big") + self.credential_id
        auth_data = (
            hashlib.sha256(RP_ID.encode()).digest()
            + bytes([FLAGS_UP_UV | 0x40])
            + self.count.to_bytes(4, "big")
            + attested
            + cbor2.dumps(cose)
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        client_data = self._client_data("webauthn.create", options["challenge"])
        return self._credential(
            {"clientDataJSON": _b64(client_data), "attestationObject": _b64(attestation),
             "transports": ["internal"]}
        )  # fmt: skip

    def assert_(self, options: dict[str, Any], flags: int = FLAGS_UP_UV) -> dict[str, Any]:
        self.count += 1
        auth_data = (
            hashlib.sha256(RP_ID.encode()).digest() + bytes([flags]) + self.count.to_bytes(4, "big")
        )
        client_data = self._client_data("webauthn.get", options["challenge"])
        signature = self.key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        return self._credential(
            {"clientDataJSON": _b64(client_data), "authenticatorData": _b64(auth_data),
             "signature": _b64(signature)}
        )  # fmt: skip

    def _credential(self, response: dict[str, Any]) -> dict[str, Any]:
        cid = _b64(self.credential_id)
        return {"id": cid, "rawId": cid, "type": "public-key", "response": response,
                "clientExtensionResults": {}}  # fmt: skip


async def device_post(w: World, device: DeviceClient, path: str, body: Any = None) -> Any:
    response = await w.http.post(
        "/authenticator/api" + path,
        json=body if body is not None else {},
        headers={"authorization": f"Bearer {device.device_token}"},
    )
    assert response.status_code in (200, 204), response.text
    return response.json() if response.status_code == 200 else None


async def registered(w: World) -> tuple[DeviceClient, SoftAuthenticator]:
    device = await w.device()
    authenticator = SoftAuthenticator()
    options = await device_post(w, device, "/webauthn/register/options")
    assert options["rp"]["id"] == RP_ID
    assert options["authenticatorSelection"]["userVerification"] == "required"
    await device_post(w, device, "/webauthn/register", authenticator.register(options))
    stored = await w.provider.storage.devices.get_device(device.device_id)
    assert stored is not None and len(stored.credentials) == 1
    return device, authenticator
