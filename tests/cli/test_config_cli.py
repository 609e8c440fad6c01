"""`backchannel config show|check` and how invalid configuration stops every command."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping

import pytest

from tests.cli.conftest import Cli

pytestmark = pytest.mark.slow

MASTER_SECRET = "m" * 40
DB_PASSWORD = "hunter2-db-password"


def test_show_prints_valid_toml_of_the_effective_configuration(cli: Cli) -> None:
    result = cli("config", "show", env={"BACKCHANNEL_CIBA__INTERVAL": "7"})
    assert result.returncode == 0, result.stderr
    shown = tomllib.loads(result.stdout)
    assert shown["ciba"]["interval"] == 7
    assert shown["dev_mode"] is True
    assert shown["database"]["url"] == f"sqlite+aiosqlite:///{cli.home}/bc.db"
    assert shown["keys"]["algorithms"] == ["RS256"]
    assert "master_secret" not in shown["keys"]  # unset: a comment, TOML has no null


def test_show_json_matches_toml(cli: Cli) -> None:
    as_json = cli("config", "show", "--json")
    as_toml = cli("config", "show")
    assert as_json.returncode == 0, as_json.stderr
    data = json.loads(as_json.stdout)
    assert data["keys"]["master_secret"] is None
    # TOML has no null: unset fields appear only as comments in the TOML form.
    without_nulls = {
        name: {k: v for k, v in value.items() if v is not None}
        if isinstance(value, dict)
        else value
        for name, value in data.items()
    }
    assert tomllib.loads(as_toml.stdout) == without_nulls


def test_show_masks_master_secret_and_database_password(cli: Cli) -> None:
    env = {
        "BACKCHANNEL_KEYS__MASTER_SECRET": MASTER_SECRET,
        "BACKCHANNEL_DATABASE__URL": f"postgresql+asyncpg://bc:{DB_PASSWORD}@db.internal/bc",
    }
    for args in (("config", "show"), ("config", "show", "--json")):
        result = cli(*args, env=env)
        assert result.returncode == 0, result.stderr
        assert MASTER_SECRET not in result.stdout
        assert DB_PASSWORD not in result.stdout
        assert "********" in result.stdout
        assert "postgresql+asyncpg://bc:********@db.internal/bc" in result.stdout


def test_show_reads_the_config_file(cli: Cli) -> None:
    (cli.home / "custom.toml").write_text(
        'issuer = "https://op.example.com"\n[ciba]\ninterval = 3\n'
    )
    result = cli("--config", "custom.toml", "config", "show", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["issuer"] == "https://op.example.com"
    assert data["ciba"]["interval"] == 3


def test_check_accepts_a_valid_configuration(cli: Cli) -> None:
    result = cli("config", "check")
    assert result.returncode == 0, result.stderr
    assert "configuration is valid" in result.stdout


def _refused(cli: Cli, *args: str, env: Mapping[str, str | None] | None = None) -> str:
    result = cli(*args, env=env)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    return result.stderr


def test_out_of_range_value_names_the_field(cli: Cli) -> None:
    message = _refused(cli, "config", "check", env={"BACKCHANNEL_CIBA__INTERVAL": "0"})
    assert "ciba.interval" in message
    assert "greater than or equal to 1" in message


def test_unknown_toml_field_names_the_field(cli: Cli) -> None:
    (cli.home / "bad.toml").write_text("[ciba]\nintervl = 3\n")
    message = _refused(cli, "--config", "bad.toml", "config", "check")
    assert "ciba.intervl: unknown field" in message


def test_http_issuer_outside_dev_mode_is_refused(cli: Cli) -> None:
    env: dict[str, str | None] = {
        "BACKCHANNEL_ISSUER": "http://op.example.com",
        "BACKCHANNEL_DEV_MODE": None,
    }
    message = _refused(cli, "config", "check", env=env)
    assert "issuer" in message
    assert "http" in message


def test_missing_config_file_is_refused(cli: Cli) -> None:
    assert "not found" in _refused(cli, "--config", "absent.toml", "config", "show")


def test_invalid_configuration_stops_other_commands_too(cli: Cli) -> None:
    env = {"BACKCHANNEL_CIBA__INTERVAL": "0"}
    for args in (("clients", "list"), ("users", "list")):
        assert "ciba.interval" in _refused(cli, *args, env=env)
    assert not (cli.home / "bc.db").exists()
