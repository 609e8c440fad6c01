"""Settings: one model, TOML + environment, clear messages naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from backchannel.settings import ConfigurationError, example_toml, load_settings

REPO = Path(__file__).resolve().parent.parent


def test_example_file_documents_every_field_and_matches_the_model() -> None:
    assert (REPO / "backchannel.example.toml").read_text() == example_toml()


def test_example_file_loads_to_the_defaults() -> None:
    from_file = load_settings(REPO / "backchannel.example.toml")
    assert from_file.model_dump() == load_settings().model_dump()


def test_ciba_defaults_are_the_documented_ones() -> None:
    ciba = load_settings().ciba
    assert (ciba.default_expires_in, ciba.max_expires_in, ciba.interval) == (120, 600, 5)


def test_toml_file_then_environment_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "bc.toml"
    config.write_text("[ciba]\ninterval = 7\nmax_expires_in = 300\n")
    monkeypatch.setenv("BACKCHANNEL_CIBA__INTERVAL", "9")
    settings = load_settings(config)
    assert settings.ciba.interval == 9
    assert settings.ciba.max_expires_in == 300
    assert settings.config_file == config


def test_config_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "bc.toml"
    config.write_text('issuer = "https://id.example.com"\n')
    monkeypatch.setenv("BACKCHANNEL_CONFIG", str(config))
    assert load_settings().issuer == "https://id.example.com"


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[ciba]\ninterval = 0\n", "ciba.interval: Input should be greater than or equal to 1"),
        ("[ciba]\nbogus = 1\n", "ciba.bogus: unknown field"),
        ('issuer = "http://id.example.com"\n', "plain http is allowed only for loopback"),
        ('[database]\nurl = "mysql://x"\n', "database.url: must start with sqlite+aiosqlite://"),
        ("[ciba]\ndefault_expires_in = 900\n", "default_expires_in must not exceed"),
        ('[keys]\nmaster_secret = "short"\n', "keys.master_secret: must be at least 32"),
        ("[ciba\n", "cannot read configuration"),
    ],
)
def test_invalid_configuration_names_the_field(tmp_path: Path, toml: str, expected: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(toml)
    with pytest.raises(ConfigurationError) as raised:
        load_settings(config)
    assert expected in str(raised.value)
    assert "Traceback" not in str(raised.value)


def test_missing_config_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        load_settings(tmp_path / "absent.toml")


def test_http_issuer_allowed_for_loopback_or_dev_mode() -> None:
    assert load_settings(issuer="http://localhost:9000/").issuer == "http://localhost:9000"
    assert load_settings(issuer="http://op.test", dev_mode=True).issuer == "http://op.test"


def test_masked_hides_secrets() -> None:
    settings = load_settings(
        keys={"master_secret": "x" * 40},
        database={"url": "postgresql+asyncpg://app:hunter2hunter2@db/bc"},
    )
    shown = str(settings.masked())
    assert "x" * 40 not in shown
    assert "hunter2hunter2" not in shown
    assert "********" in shown
