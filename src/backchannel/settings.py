"""The one Settings model: a TOML file plus ``BACKCHANNEL_*`` environment variables.

Precedence (highest first): explicit overrides, environment, TOML file, defaults.
Nested fields use ``__`` in the environment: ``BACKCHANNEL_CIBA__INTERVAL=10``.
This is the only module that reads the environment.
"""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_ENV = "BACKCHANNEL_CONFIG"
DEFAULT_CONFIG_FILE = "backchannel.toml"
SIGNING_ALGORITHMS = ("RS256", "PS256", "ES256")
SigningAlg = Literal["RS256", "PS256", "ES256"]


def _all_signing_algorithms() -> list[SigningAlg]:
    return ["RS256", "PS256", "ES256"]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerSettings(Section):
    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8080, ge=1, le=65535, description="TCP port to listen on.")
    workers: int = Field(1, ge=1, le=64, description="Number of server processes.")
    max_body_bytes: int = Field(
        65536, ge=1024, description="Request bodies larger than this are refused with 413."
    )
    access_log: bool = Field(True, description="Log one JSON line per HTTP request.")


class DatabaseSettings(Section):
    url: str = Field(
        "sqlite+aiosqlite:///./var/backchannel.db",
        description="sqlite+aiosqlite:///PATH (embedded) or postgresql+asyncpg://USER@HOST/DB.",
    )
    pool_size: int = Field(10, ge=1, le=200, description="Connections per process (PostgreSQL).")
    sqlite_busy_timeout_ms: int = Field(
        5000, ge=0, description="How long a write waits for another process's SQLite write lock."
    )
    sqlite_checkpoint_interval_ms: int = Field(
        100,
        ge=10,
        le=60000,
        description="How often a background thread copies the SQLite WAL into the database file.",
    )
    sqlite_wal_limit_mib: int = Field(
        256,
        ge=1,
        le=65536,
        description="WAL size past which writers pause so that SQLite's WAL starts over, in MiB.",
    )
    sqlite_cache_mib: int = Field(
        32,
        ge=1,
        le=4096,
        description="SQLite page cache of each server process, in MiB (SQLite's default: 2).",
    )

    @field_validator("url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")


class TokenSettings(Section):
    access_token_ttl: int = Field(300, ge=30, le=86400, description="Access token lifetime (s).")
    id_token_ttl: int = Field(300, ge=30, le=86400, description="ID token lifetime (s).")
    refresh_token_ttl: int = Field(
        2592000, ge=60, description="Refresh token lifetime (s), reset on every rotation."
    )
    access_token_alg: Literal["RS256", "PS256", "ES256"] = Field(
        "ES256", description="Algorithm of JWT access tokens (RFC 9068). ES256 is cheapest."
    )
    issue_refresh_tokens: bool = Field(True, description="Issue refresh tokens on CIBA grants.")


class CibaSettings(Section):
    default_expires_in: int = Field(120, ge=10, description="auth_req_id lifetime (s).")
    max_expires_in: int = Field(600, ge=10, description="Upper bound for requested_expiry (s).")
    interval: int = Field(5, ge=1, le=60, description="Minimum seconds between polls.")
    slow_down_increment: int = Field(5, ge=5, description="Seconds added by each slow_down.")
    binding_message_max_length: int = Field(
        64, ge=1, le=1024, description="Longest binding_message accepted (characters)."
    )
    long_poll_seconds: int = Field(0, ge=0, le=30, description="Hold pending polls (0 = off).")
    user_code_max_failures: int = Field(5, ge=1, description="Wrong user codes before lockout.")
    user_code_lockout_seconds: int = Field(900, ge=1, description="Lockout after failures (s).")
    request_object_max_lifetime: int = Field(
        3600, ge=60, description="Longest exp - nbf accepted in a signed request (s)."
    )
    clock_skew_seconds: int = Field(10, ge=0, le=300, description="Tolerated clock skew (s).")

    @model_validator(mode="after")
    def _bounds(self) -> CibaSettings:
        if self.default_expires_in > self.max_expires_in:
            raise ValueError("default_expires_in must not exceed max_expires_in")
        return self


class KeySettings(Section):
    algorithms: list[SigningAlg] = Field(
        default_factory=_all_signing_algorithms,
        description="Signing algorithms with a key each. RS256 is always included.",
    )
    master_secret: SecretStr | None = Field(
        None,
        description="Secret protecting private keys and client secrets (>= 32 characters). "
        "When unset, a random one is generated into master_secret_file.",
    )
    master_secret_file: str = Field(
        "./var/master.key", description="Where the generated master secret lives (mode 0600)."
    )
    rotation_delay: int = Field(
        86400, ge=0, description="After `keys rotate`: seconds before the new key signs."
    )
    grace_period: int = Field(
        604800, ge=0, description="After a key stops signing: seconds it stays published."
    )

    @field_validator("algorithms")
    @classmethod
    def _rs256_always(cls, value: list[str]) -> list[str]:
        return sorted(set(value) | {"RS256"}, key=SIGNING_ALGORITHMS.index)

    @field_validator("master_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters")
        return value


class LoggingSettings(Section):
    level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")
    json_logs: bool = Field(True, description="JSON lines (true) or human-readable (false).")


class OutboxSettings(Section):
    run_in_server: bool = Field(
        True, description="Run the delivery worker inside `backchannel serve` processes."
    )
    max_attempts: int = Field(4, ge=1, le=20, description="Delivery attempts per entry.")
    timeout_seconds: float = Field(5.0, gt=0, le=60, description="Per-attempt HTTP timeout.")
    backoff_base_seconds: float = Field(
        1.0, gt=0, description="First retry delay; doubles each attempt, with jitter."
    )
    backoff_max_seconds: float = Field(60.0, gt=0, description="Longest retry delay.")
    poll_interval_seconds: float = Field(
        0.5, gt=0, le=30, description="How often an idle worker looks for due entries."
    )
    lease_seconds: float = Field(
        30.0, gt=0, description="How long a claimed entry is reserved for one worker."
    )


class OutboundSettings(Section):
    allow_list: list[str] = Field(
        default_factory=list,
        description="Hosts or CIDR ranges that outbound calls may reach even though they "
        "are loopback/private/link-local (e.g. an internal notification gateway).",
    )
    max_response_bytes: int = Field(
        65536, ge=1024, description="Largest response body read from an outbound call."
    )


class EventSettings(Section):
    backend: Literal["memory", "postgres", "redis"] = Field(
        "memory",
        description="How a decision in one process wakes long polls in another: memory "
        "(one process), postgres (LISTEN/NOTIFY on the database) or redis (pub/sub).",
    )
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Redis for backend=redis.")


class DeviceSettings(Section):
    max_pending_per_user: int = Field(
        3, ge=1, description="Pending requests a user may have at once (anti push-bombing)."
    )
    max_notices_per_window: int = Field(
        5, ge=1, description="Device notices per user per notice window."
    )
    notice_window_seconds: int = Field(900, ge=60, description="The notice window (s).")
    report_pause_seconds: int = Field(
        900, ge=60, description="After 'This wasn't me': pause for that client and user (s)."
    )
    enrol_code_ttl: int = Field(600, ge=60, le=86400, description="Enrolment code lifetime (s).")
    vapid_subject: str = Field(
        "mailto:security@example.com", description="Contact sent with Web Push (VAPID sub)."
    )
    webauthn_rp_id: str | None = Field(
        None, description="WebAuthn relying party id; defaults to the issuer's host."
    )


class MetricsSettings(Section):
    enabled: bool = Field(True, description="Serve Prometheus metrics at /metrics.")


class TestingSettings(Section):
    automated_approval: bool = Field(
        False, description="Expose POST /test/ciba/approve. Never enable in production."
    )


class Settings(BaseSettings):
    """Everything Backchannel can be configured with."""

    model_config = SettingsConfigDict(
        env_prefix="BACKCHANNEL_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    issuer: str = Field(
        "http://127.0.0.1:8080",
        description="Issuer identifier: an https URL (plain http for loopback or dev mode).",
    )
    dev_mode: bool = Field(
        False, description="Developer mode: http issuer and loopback notification endpoints."
    )
    server: ServerSettings = Field(default_factory=ServerSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    tokens: TokenSettings = Field(default_factory=TokenSettings)
    ciba: CibaSettings = Field(default_factory=CibaSettings)
    keys: KeySettings = Field(default_factory=KeySettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    outbound: OutboundSettings = Field(default_factory=OutboundSettings)
    events: EventSettings = Field(default_factory=EventSettings)
    devices: DeviceSettings = Field(default_factory=DeviceSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    testing: TestingSettings = Field(default_factory=TestingSettings)

    _config_file: Path | None = None

    @field_validator("issuer")
    @classmethod
    def _issuer_shape(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL")
        if parts.query or parts.fragment:
            raise ValueError("must not have a query or fragment")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _https_unless_local(self) -> Settings:
        # A loopback issuer is reachable from this machine only, so plain http exposes
        # nothing; any other host needs https unless dev mode says otherwise.
        parts = urlsplit(self.issuer)
        if parts.scheme == "http" and not (self.dev_mode or is_loopback_host(parts.hostname)):
            raise ValueError("issuer: plain http is allowed only for loopback hosts or in dev mode")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def config_file(self) -> Path | None:
        return self._config_file

    def endpoint(self, path: str) -> str:
        return f"{self.issuer}{path}"

    def masked(self) -> dict[str, Any]:
        """The effective configuration as plain data, secrets replaced by '********'."""
        data = self.model_dump(mode="json")
        if self.keys.master_secret is not None:
            data["keys"]["master_secret"] = "********"
        data["database"]["url"] = mask_url_password(self.database.url)
        return data


class ConfigurationError(Exception):
    """Invalid configuration: the message names the offending field."""


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Read settings from the TOML file (if any), the environment and overrides."""
    path = _resolve_config_path(config_file)

    class FileSettings(Settings):
        model_config = SettingsConfigDict(toml_file=path)

    try:
        settings: Settings = FileSettings(**overrides)
    except ValidationError as exc:
        raise ConfigurationError(describe_validation_error(exc, path)) from None
    except (OSError, ValueError) as exc:
        source = f"configuration {path}" if path else "BACKCHANNEL_* environment"
        raise ConfigurationError(f"cannot read {source}: {exc}") from None
    settings._config_file = path
    return settings


def _resolve_config_path(config_file: str | Path | None) -> Path | None:
    explicit = config_file or os.environ.get(CONFIG_ENV)
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigurationError(f"configuration file not found: {path}")
        return path
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def describe_validation_error(exc: ValidationError, path: Path | None) -> str:
    where = f" (in {path} or BACKCHANNEL_* environment)" if path else ""
    lines = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        lines.append(
            f"invalid configuration{where}: " + (f"{field}: {message}" if field else message)
        )
    return "\n".join(lines)


def is_loopback_host(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def mask_url_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":********@", 1)
    return url


def example_toml() -> str:
    """The documented example configuration: every field, its default and its description.
    ``backchannel.example.toml`` is this text (a test keeps them equal)."""
    lines = [
        "# Backchannel configuration. Every field is optional; shown here with its default.",
        "# Environment variables override the file: BACKCHANNEL_<FIELD>, nested with __,",
        "# e.g. BACKCHANNEL_CIBA__INTERVAL=10.",
        "# Choose the file with --config or BACKCHANNEL_CONFIG.",
        "",
    ]
    sections: list[tuple[str, type[BaseModel]]] = []
    for name, info in Settings.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            sections.append((name, annotation))
            continue
        lines += _example_field(name, info.description, info.get_default(call_default_factory=True))
    for name, model in sections:
        lines += ["", f"[{name}]"]
        for field_name, info in model.model_fields.items():
            default = info.get_default(call_default_factory=True)
            lines += _example_field(field_name, info.description, default)
    return "\n".join(lines) + "\n"


def _example_field(name: str, description: str | None, default: Any) -> list[str]:
    comment = f"# {description}" if description else f"# {name}"
    if default is None:
        return [comment, f"# {name} = ..."]
    return [comment, f"{name} = {toml_value(default)}"]


def toml_value(value: Any) -> str:
    """A plain value (bool, number, string, list of them) as TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    # JSON string escapes are valid TOML basic-string escapes.
    return json.dumps(str(value), ensure_ascii=False)
