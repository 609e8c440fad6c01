"""TLS goes to the checked address but still verifies the certificate for the URL's host
name (and sends it as SNI and Host): pinning the address does not weaken TLS (item 113)."""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from backchannel.outbound import OutboundClient, OutboundError, StaticResolver
from tests.support.provider import make_settings
from tests.support.receiver import Receiver, Reply, running_receiver

pytestmark = pytest.mark.anyio
HOST = "hook.example.test"


def self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[tuple[Receiver, Path]]:
    cert, key = self_signed(tmp_path, HOST)
    with running_receiver(ssl_certfile=str(cert), ssl_keyfile=str(key)) as receiver:
        yield receiver, cert


def client_trusting(cert: Path) -> OutboundClient:
    context = ssl.create_default_context(cafile=str(cert))
    resolver = StaticResolver({HOST: ["127.0.0.1"], "other.example.test": ["127.0.0.1"]})
    return OutboundClient(make_settings(dev_mode=True), resolver, ssl_context=context)


async def test_certificate_is_checked_for_the_url_host(
    tls_receiver: tuple[Receiver, Path],
) -> None:
    receiver, cert = tls_receiver
    receiver.on("/cb", Reply(204))
    outbound = client_trusting(cert)
    try:
        response = await outbound.post_json(f"https://{HOST}:{receiver.port}/cb", {"a": 1})
    finally:
        await outbound.close()
    assert response.status == 204
    assert receiver.calls[0].headers["host"] == f"{HOST}:{receiver.port}"


async def test_certificate_for_another_name_is_refused(
    tls_receiver: tuple[Receiver, Path],
) -> None:
    receiver, cert = tls_receiver
    outbound = client_trusting(cert)
    try:
        with pytest.raises(OutboundError, match="Hostname mismatch"):
            await outbound.post_json(f"https://other.example.test:{receiver.port}/cb", {})
    finally:
        await outbound.close()
    assert receiver.calls == []
