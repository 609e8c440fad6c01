"""Registration refuses outbound URLs that point inside the network (items 14, 199, 200),
naming the field. Literal IPs only: they need no DNS, and nothing is ever contacted."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest

from tests.cli.conftest import Cli

pytestmark = pytest.mark.slow
NOTIFY = "backchannel_client_notification_endpoint"
OUTSIDE_DEV_MODE = {"BACKCHANNEL_DEV_MODE": "false"}


def add_ping_client(cli: Cli, endpoint: str, env: Mapping[str, str | None] | None = None) -> str:
    result = cli(
        "clients", "add", "--name", "RP", "--delivery-mode", "ping",
        "--notification-endpoint", endpoint, env=env,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout
    return result.stderr


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("https://10.0.0.5/cb", "10.0.0.5 is a private address"),
        ("https://169.254.169.254/x", "169.254.169.254 is a cloud metadata address"),
        ("https://[::ffff:192.168.0.9]/cb", "::ffff:192.168.0.9 is a private address"),
    ],
)
def test_item_200_internal_notification_endpoint_is_refused(
    cli: Cli, endpoint: str, expected: str
) -> None:
    stderr = add_ping_client(cli, endpoint)
    assert f"{NOTIFY}: {expected}" in stderr
    assert json.loads(cli("clients", "list", "--json").stdout) == []


def test_item_200_loopback_endpoint_is_refused_outside_dev_mode(cli: Cli) -> None:
    stderr = add_ping_client(cli, "https://127.0.0.1/cb", OUTSIDE_DEV_MODE)
    assert f"{NOTIFY}: 127.0.0.1 is a loopback address" in stderr
    accepted = cli(
        "clients", "add", "--name", "RP", "--delivery-mode", "ping",
        "--notification-endpoint", "https://127.0.0.1/cb",
    )  # fmt: skip
    assert accepted.returncode == 0, accepted.stderr  # dev mode allows loopback


def test_item_200_internal_jwks_uri_is_refused(cli: Cli) -> None:
    result = cli(
        "clients", "add", "--name", "RP", "--delivery-mode", "poll",
        "--auth-method", "private_key_jwt", "--jwks-uri", "https://[fd00::1]/jwks",
    )  # fmt: skip
    assert result.returncode == 2
    assert "jwks_uri: fd00::1 is a private address" in result.stderr


def test_update_to_an_internal_endpoint_is_refused_and_changes_nothing(cli: Cli) -> None:
    added = cli(
        "clients", "add", "--name", "RP", "--delivery-mode", "ping", "--client-id", "rp",
        "--notification-endpoint", "https://93.184.216.34/cb", "--json",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    result = cli("clients", "update", "rp", "--notification-endpoint", "https://10.1.2.3/cb")
    assert result.returncode == 2
    assert f"{NOTIFY}: 10.1.2.3 is a private address" in result.stderr
    shown = json.loads(cli("clients", "show", "rp", "--json").stdout)
    assert shown[NOTIFY] == "https://93.184.216.34/cb"


def test_allow_listed_range_may_be_registered(cli: Cli) -> None:
    env: dict[str, str | None] = {"BACKCHANNEL_OUTBOUND__ALLOW_LIST": '["10.0.0.0/8"]'}
    result = cli(
        "clients", "add", "--name", "RP", "--delivery-mode", "ping",
        "--notification-endpoint", "https://10.0.0.5/cb", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
