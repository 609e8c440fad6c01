"""`backchannel clients ...` as a real subprocess on SQLite."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from backchannel.protocol import jose
from tests.cli.conftest import Cli

pytestmark = pytest.mark.slow


def _json(cli: Cli, *args: str) -> Any:
    result = cli(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _add(cli: Cli, *args: str) -> dict[str, Any]:
    added: dict[str, Any] = _json(cli, "clients", "add", "--name", "RP", *args)
    return added


def test_add_generates_id_and_secret_shown_once(cli: Cli) -> None:
    result = cli("clients", "add", "--name", "Call Centre", "--delivery-mode", "poll")
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(None, 1) for line in result.stdout.splitlines() if "  " in line)
    client_id, secret = lines["client_id"].strip(), lines["client_secret"].strip()
    assert client_id.startswith("c_")
    assert len(secret) >= 43
    assert "shown only now" in result.stdout
    shown = cli("clients", "show", client_id)
    assert shown.returncode == 0, shown.stderr
    assert "Call Centre" in shown.stdout
    assert secret not in shown.stdout
    assert "hmac:" not in shown.stdout and "secret_hash" not in shown.stdout
    assert secret not in (cli.home / "bc.db").read_bytes().decode("latin-1")


def test_add_with_all_fields_and_json_output(cli: Cli) -> None:
    jwks_file = cli.home / "jwks.json"
    jwks_file.write_text(
        json.dumps({"keys": [jose.public_jwk(jose.generate_private_jwk("ES256", "k"))]})
    )
    added = _add(
        cli,
        "--client-id", "pos-terminal",
        "--auth-method", "private_key_jwt",
        "--delivery-mode", "ping",
        "--notification-endpoint", "https://pos.example/cb",
        "--logo-uri", "https://pos.example/logo.png",
        "--policy-uri", "https://pos.example/policy",
        "--jwks-file", str(jwks_file),
        "--user-code",
        "--request-signing-alg", "ES256",
        "--id-token-alg", "PS256",
        "--scope", "openid profile",
        "--authorization-details-types", "payment_initiation, account_information",
    )  # fmt: skip
    assert "client_secret" not in added  # private_key_jwt: no secret
    shown = _json(cli, "clients", "show", "pos-terminal")
    assert shown == added
    assert shown["backchannel_token_delivery_mode"] == "ping"
    assert shown["backchannel_client_notification_endpoint"] == "https://pos.example/cb"
    assert shown["backchannel_user_code_parameter"] is True
    assert shown["backchannel_authentication_request_signing_alg"] == "ES256"
    assert shown["id_token_signed_response_alg"] == "PS256"
    assert shown["authorization_details_types"] == ["payment_initiation", "account_information"]
    assert shown["jwks"]["keys"][0]["kty"] == "EC"


def test_item_14_bad_metadata_exits_2_naming_the_field(cli: Cli) -> None:
    result = cli("clients", "add", "--name", "RP", "--delivery-mode", "ping")
    assert result.returncode == 2
    assert "backchannel_client_notification_endpoint" in result.stderr
    plain = cli(
        "clients", "add", "--name", "RP", "--delivery-mode", "push",
        "--notification-endpoint", "http://rp.example/cb",
    )  # fmt: skip
    assert plain.returncode == 2
    assert "https" in plain.stderr
    assert _json(cli, "clients", "list") == []


def test_item_204_client_id_like_a_subject_is_refused(cli: Cli) -> None:
    result = cli("clients", "add", "--name", "RP", "--delivery-mode", "poll", "--client-id", "u_x")
    assert result.returncode == 2
    assert "client_id" in result.stderr


def test_duplicate_client_id_exits_2(cli: Cli) -> None:
    _add(cli, "--delivery-mode", "poll", "--client-id", "rp-one")
    again = cli(
        "clients", "add", "--name", "RP", "--delivery-mode", "poll", "--client-id", "rp-one"
    )
    assert again.returncode == 2
    assert "already exists" in again.stderr


def test_operator_secret_is_argon2_hashed_and_not_echoed(cli: Cli) -> None:
    secret = "an-operator-chosen-secret"
    added = _add(cli, "--delivery-mode", "poll", "--client-id", "rp", "--secret", secret)
    assert "client_secret" not in added
    assert b"argon2:" in (cli.home / "bc.db").read_bytes()
    short = cli("clients", "add", "--name", "RP", "--delivery-mode", "poll", "--secret", "short")
    assert short.returncode == 2
    assert "client_secret" in short.stderr


def test_update_changes_named_fields_only(cli: Cli) -> None:
    _add(cli, "--delivery-mode", "poll", "--client-id", "rp", "--scope", "openid email")
    updated = _json(
        cli, "clients", "update", "rp", "--name", "Renamed",
        "--delivery-mode", "push", "--notification-endpoint", "https://rp.example/cb",
    )  # fmt: skip
    assert updated["client_name"] == "Renamed"
    assert updated["backchannel_token_delivery_mode"] == "push"
    assert updated["scope"] == "openid email"
    back = _json(cli, "clients", "update", "rp", "--delivery-mode", "poll")
    assert "backchannel_client_notification_endpoint" not in back
    bad = cli("clients", "update", "rp", "--scope", "email")
    assert bad.returncode == 2
    assert "scope" in bad.stderr
    assert _json(cli, "clients", "show", "rp")["scope"] == "openid email"


def test_rotate_secret_prints_a_new_secret(cli: Cli) -> None:
    first = _add(cli, "--delivery-mode", "poll", "--client-id", "rp")
    rotated = _json(cli, "clients", "rotate-secret", "rp")
    assert rotated["client_secret"] != first["client_secret"]
    assert len(rotated["client_secret"]) >= 43
    db = (cli.home / "bc.db").read_bytes().decode("latin-1")
    assert first["client_secret"] not in db and rotated["client_secret"] not in db


def test_list_and_remove(cli: Cli) -> None:
    _add(cli, "--delivery-mode", "poll", "--client-id", "rp-a")
    _add(cli, "--delivery-mode", "poll", "--client-id", "rp-b")
    assert sorted(c["client_id"] for c in _json(cli, "clients", "list")) == ["rp-a", "rp-b"]
    listed = cli("clients", "list")
    assert "rp-a" in listed.stdout and "rp-b" in listed.stdout
    assert cli("clients", "remove", "rp-a").returncode == 0
    assert [c["client_id"] for c in _json(cli, "clients", "list")] == ["rp-b"]
    missing = cli("clients", "remove", "rp-a")
    assert missing.returncode == 1
    assert "rp-a" in missing.stderr
    assert cli("clients", "show", "nope").returncode == 1


def test_unreadable_jwks_file_names_the_field(cli: Cli, tmp_path: Path) -> None:
    result = cli(
        "clients", "add", "--name", "RP", "--delivery-mode", "poll",
        "--jwks-file", str(tmp_path / "missing.json"),
    )  # fmt: skip
    assert result.returncode == 2
    assert "jwks" in result.stderr
