"""The master secret, and the keys derived from it.

The master secret comes from ``keys.master_secret`` when set; otherwise from
``keys.master_secret_file``, generated on first use. Two independent 32-byte keys are
derived from it with HKDF-SHA256: one encrypts private signing keys at rest, the other is
the pepper of ``protocol.secrets.SecretHasher``. Nothing here is ever logged.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import re
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from backchannel.settings import KeySettings

SECRET_BYTES = 32
_KEY_ENCRYPTION_INFO = b"backchannel/v1/key-encryption-key"
_PEPPER_INFO = b"backchannel/v1/secret-pepper"
_DELIVERY_INFO = b"backchannel/v1/delivery-key"
_BASE64URL = re.compile(rb"[A-Za-z0-9_-]+")


class MasterSecretError(Exception):
    """The master secret file is unusable. The message names the file, never the secret."""


@dataclass(frozen=True, slots=True)
class MasterSecret:
    key_encryption_key: bytes = field(repr=False)
    pepper: bytes = field(repr=False)
    # Seals delivery secrets and outbox payloads (``protocol.sealed``).
    delivery_key: bytes = field(repr=False, default=b"")


def load_master_secret(keys: KeySettings) -> MasterSecret:
    """Derive the service keys from the configured (or generated) master secret."""
    if keys.master_secret is not None:
        raw = keys.master_secret.get_secret_value().encode("utf-8")
    else:
        raw = read_or_create_secret_file(Path(keys.master_secret_file))
    return MasterSecret(
        key_encryption_key=_derive(raw, _KEY_ENCRYPTION_INFO),
        pepper=_derive(raw, _PEPPER_INFO),
        delivery_key=_derive(raw, _DELIVERY_INFO),
    )


def read_or_create_secret_file(path: Path) -> bytes:
    """The secret stored in ``path``; a new random one when the file does not exist."""
    try:
        return _read_secret_file(path)
    except FileNotFoundError:
        pass
    _create_secret_file(path)
    return _read_secret_file(path)


def _derive(secret: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=info).derive(secret)


def _read_secret_file(path: Path) -> bytes:
    with path.open("rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if stat.S_IMODE(mode) & 0o077:
            raise MasterSecretError(
                f"{path} is readable by other users (mode {stat.S_IMODE(mode):04o}); "
                f"run: chmod 600 {path}"
            )
        text = handle.read().strip()
    if not _BASE64URL.fullmatch(text):
        raise MasterSecretError(f"{path} does not hold a base64url master secret")
    try:
        secret = base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))
    except binascii.Error:
        raise MasterSecretError(f"{path} does not hold a base64url master secret") from None
    if len(secret) < SECRET_BYTES:
        raise MasterSecretError(f"{path} holds fewer than {SECRET_BYTES} bytes of secret")
    return secret


def _create_secret_file(path: Path) -> None:
    """Write a new secret so that the file appears complete or not at all.

    The secret goes into a private temporary file first (O_EXCL, mode 0600 from the start),
    which is then hard-linked to ``path``. ``link`` fails when ``path`` exists, so when two
    processes race exactly one secret wins and the loser reads it.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    encoded = base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).rstrip(b"=")
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    descriptor = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(encoded + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another process won: use theirs
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
