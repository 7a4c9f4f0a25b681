"""load_config(path) -> Config: the operator's YAML, checked whole, every problem named by its path."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from bridge.config_refs import cross_reference_problems
from bridge.interpolate import format_path, interpolate
from bridge.signing import check_secret

DEFAULT_RETRY_SCHEDULE_S = [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0]


class ConfigError(Exception):
    """The configuration has problems; `problems` holds one line per problem, each naming its path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(_Strict):
    """Where the HTTP API listens and the URL people use to reach it."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    public_url: str | None = None

    @property
    def base_url(self) -> str:
        """The public URL, defaulting to the listening address."""
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


class StorageConfig(_Strict):
    """The database: SQLite for one process, PostgreSQL for replicas."""

    url: str = "sqlite:///bridge.db"

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        scheme = value.split(":", 1)[0]
        if scheme not in {"sqlite", "sqlite+aiosqlite", "postgresql", "postgresql+asyncpg"}:
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value


class AccountConfig(_Strict):
    """One AI Gen Studio API key and the budget it may spend."""

    api_key: SecretStr
    polls_per_hour: int = Field(120, ge=1, le=100_000)
    max_concurrency: int = Field(2, ge=1, le=1000)

    @field_validator("api_key")
    @classmethod
    def _not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value


class UpstreamConfig(_Strict):
    """The AI Gen Studio API and the accounts polled on it."""

    base_url: str = "https://aigenstudio.app/api/v1"
    timeout_s: float = Field(10.0, gt=0, le=300)
    transport: Literal["aiohttp", "httpx"] = "aiohttp"
    accounts: dict[str, AccountConfig] = Field(default_factory=dict)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")


class PollingConfig(_Strict):
    """How often jobs are polled, by status, and how long a watch lives."""

    queued_interval_s: float = Field(60, gt=0)
    processing_interval_s: float = Field(15, gt=0)
    max_interval_s: float = Field(300, gt=0)
    watch_ttl_h: float = Field(48, gt=0)

    @model_validator(mode="after")
    def _max_covers_others(self) -> PollingConfig:
        if self.max_interval_s < max(self.queued_interval_s, self.processing_interval_s):
            raise ValueError(
                "max_interval_s must be at least queued_interval_s and processing_interval_s"
            )
        return self


def _check_whsec(value: SecretStr) -> SecretStr:
    # The signer's own check, so the config never accepts a secret that cannot sign.
    try:
        check_secret(value.get_secret_value())
    except ValueError:
        raise ValueError("must be 'whsec_' followed by base64") from None
    return value


# Checked one by one, so each problem names its own path (and a missing ${VAR} only once).
WebhookSecret = Annotated[SecretStr, AfterValidator(_check_whsec)]


class ClientConfig(_Strict):
    """A backend allowed to register watches, and the secrets its webhooks are signed with."""

    token: SecretStr
    accounts: list[str] = Field(min_length=1)
    webhook_secrets: list[WebhookSecret] = Field(default_factory=list)

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 8:
            raise ValueError("must be at least 8 characters")
        return value


class WebhookChannelConfig(_Strict):
    """A signed Standard Webhooks endpoint."""

    type: Literal["webhook"]
    url: str
    secret: WebhookSecret | None = None
    secrets: list[WebhookSecret] = Field(default_factory=list)

    @model_validator(mode="after")
    def _has_secret(self) -> WebhookChannelConfig:
        if not self.signing_secrets:
            raise ValueError("needs 'secret' or 'secrets'")
        return self

    @property
    def signing_secrets(self) -> list[SecretStr]:
        """Every secret that signs, newest first as configured."""
        return ([self.secret] if self.secret else []) + list(self.secrets)


class SlackChannelConfig(_Strict):
    """A Slack channel reached with a bot token through the Web API."""

    type: Literal["slack"]
    token: SecretStr
    channel: str = Field(min_length=1)
    base_url: str | None = None

    @field_validator("base_url")
    @classmethod
    def _api_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        # slack-sdk joins method names onto it: without the slash, '.../api' + 'chat.postMessage'
        # would become '.../chat.postMessage'.
        return value if value.endswith("/") else value + "/"


class SlackWebhookChannelConfig(_Strict):
    """A Slack incoming-webhook URL: posts only, cannot edit."""

    type: Literal["slack_webhook"]
    url: SecretStr


class EmailChannelConfig(_Strict):
    """An SMTP server and the people who get the emails."""

    type: Literal["email"]
    host: str
    port: int = Field(587, ge=1, le=65535)
    starttls: bool = True
    tls: bool = False
    username: str | None = None
    password: SecretStr | None = None
    from_: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    mode: Literal["summary", "events"] = "summary"

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


ChannelConfig = Annotated[
    WebhookChannelConfig | SlackChannelConfig | SlackWebhookChannelConfig | EmailChannelConfig,
    Field(discriminator="type"),
]
CHANNEL_TYPES = ("webhook", "slack", "slack_webhook", "email")


class RouteConfig(_Strict):
    """Events matching these patterns, accounts and clients go to these channels."""

    events: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    accounts: list[str] | None = None
    clients: list[str] | None = None
    channels: list[str] = Field(min_length=1)


class DeliveryConfig(_Strict):
    """Timeouts, the retry schedule and the private-network guard's exemptions."""

    timeout_s: float = Field(10.0, gt=0, le=300)
    retry_schedule_s: list[float] = Field(
        default_factory=lambda: list(DEFAULT_RETRY_SCHEDULE_S), min_length=1
    )
    allowed_hosts: list[str] = Field(default_factory=list)

    @field_validator("retry_schedule_s")
    @classmethod
    def _positive(cls, value: list[float]) -> list[float]:
        if any(v < 0 for v in value):
            raise ValueError("delays must not be negative")
        return value


class TemplatesConfig(_Strict):
    """A folder of template overrides, searched before the packaged templates."""

    dir: Path | None = None


class Config(_Strict):
    """The whole operator configuration."""

    server: ServerConfig = Field(default_factory=ServerConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    upstream: UpstreamConfig = Field(default_factory=UpstreamConfig)
    polling: PollingConfig = Field(default_factory=PollingConfig)
    clients: dict[str, ClientConfig] = Field(default_factory=dict)
    channels: dict[str, ChannelConfig] = Field(default_factory=dict)
    routes: list[RouteConfig] = Field(default_factory=list)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    templates: TemplatesConfig = Field(default_factory=TemplatesConfig)


def _pydantic_problems(error: ValidationError, skip: set[str]) -> list[str]:
    problems = []
    for item in error.errors():
        loc = list(item["loc"])
        if len(loc) >= 3 and loc[0] == "channels" and loc[2] in CHANNEL_TYPES:
            del loc[2]  # pydantic puts the union tag in the path; operators never wrote it
        message = {
            "extra_forbidden": "unknown key",
            "missing": "required key is missing",
            "union_tag_not_found": "required key is missing",
        }.get(item["type"], item["msg"].removeprefix("Value error, "))
        if item["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc.append("type")  # the channel's `type` is what is wrong, not the channel
        if item["type"] == "union_tag_invalid":
            tag = item.get("ctx", {}).get("tag")
            message = f"unknown channel type {tag!r} (use {', '.join(CHANNEL_TYPES)})"
        path = format_path(loc)
        if path in skip:
            continue
        problems.append(f"{path or '(top level)'}: {message}")
    return problems


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """Where the YAML breaks, on one line; the offending text is left out (it may be a secret)."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem and exc.problem_mark:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}"
        detail = exc.problem
    else:
        where, detail = "", str(exc)  # e.g. a control character: the message holds no content
    return f"(file): not valid YAML{where}: {' '.join(detail.split())}"


def parse_config(text: str, *, env: Mapping[str, str] | None = None) -> Config:
    """Parse YAML text into a Config, raising ConfigError with every problem found."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(exc)]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(["(top level): must be a mapping of sections"])
    raw, problems = interpolate(raw, os.environ if env is None else env)
    skip = {p.split(":", 1)[0] for p in problems}
    config: Config | None = None
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        problems += _pydantic_problems(exc, skip)
    problems += cross_reference_problems(raw)
    if problems or config is None:
        raise ConfigError(problems)
    return config


def config_path(explicit: str | None) -> Path:
    """The config file to read: --config, then $BRIDGE_CONFIG, then ./config.yaml."""
    return Path(explicit or os.environ.get("BRIDGE_CONFIG") or "config.yaml")


def load_config(path: Path, *, env: Mapping[str, str] | None = None) -> Config:
    """Read and parse the config file at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"(file): cannot read {path}: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"(file): cannot read {path}: not UTF-8 text"]) from None
    return parse_config(text, env=env)


def model_dump_redacted(config: Config) -> dict[str, Any]:
    """The config as JSON-ready data with every secret masked."""
    return config.model_dump(mode="json", by_alias=True)
