"""What an approval from a device proves, as ``acr`` and ``amr`` (RFC 8176) for the id_token.

- device key signature only: acr ``urn:backchannel:acr:device-key``, amr ``["swk"]``;
- device key + WebAuthn assertion with user verification: acr
  ``urn:backchannel:acr:device-key+uv``, amr ``["swk", "hwk", "user", "mfa"]``.

``swk``: proof of a software-secured key (the device key: non-extractable WebCrypto, or a
PEM file for the SDK); ``hwk``: the WebAuthn platform credential; ``user``: user presence and
verification (biometric or PIN) checked by the authenticator; ``mfa``: two factors.

A request whose ``acr_values`` contain the UV level, or a client with
``require_user_verification``, is only approved with a WebAuthn assertion carrying UV.
"""

from __future__ import annotations

ACR_DEVICE_KEY = "urn:backchannel:acr:device-key"
ACR_DEVICE_KEY_UV = "urn:backchannel:acr:device-key+uv"
SUPPORTED_ACR_VALUES = (ACR_DEVICE_KEY, ACR_DEVICE_KEY_UV)
AMR_DEVICE_KEY: tuple[str, ...] = ("swk",)
AMR_DEVICE_KEY_UV: tuple[str, ...] = ("swk", "hwk", "user", "mfa")


def achieved(user_verified: bool) -> tuple[str, tuple[str, ...]]:
    if user_verified:
        return ACR_DEVICE_KEY_UV, AMR_DEVICE_KEY_UV
    return ACR_DEVICE_KEY, AMR_DEVICE_KEY
