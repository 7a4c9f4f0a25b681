"""The configuration's typed model (CONTRACT section 2): strict pydantic, secrets as SecretStr."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from bridge.delivery.signing import check_secret

DEFAULT_RETRY_SCHEDULE_S = [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0]


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


_URL_PASSWORD = re.compile(r"^([a-z0-9+.-]+://[^:/@]*):.*@", re.IGNORECASE | re.DOTALL)


def redact_url_password(url: str) -> str:
    """`url` with the password of its user info shown as *** (a database URL holds one)."""
    # Up to the last "@", as SQLAlchemy reads it: a password may hold "/", ":" or "?" unencoded.
    return _URL_PASSWORD.sub(r"\1:***@", url, count=1)


class StorageConfig(_Strict):
    """The database: SQLite for one process, PostgreSQL for replicas."""

    url: str = "sqlite:///bridge.db"

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # repr(config) ends up in tracebacks and debug output: never with the database password.
        yield "url", redact_url_password(self.url)

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
    discover: bool = False  # also watch every job of the account, found by listing them

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
    discover_interval_s: float = Field(300, ge=10)  # how often discovery lists an account's jobs

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
    max_active_watches: int = Field(10_000, ge=1)  # more is a 429 watch_limit_reached

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 8:
            raise ValueError("must be at least 8 characters")
        return value


class OperatorConfig(_Strict):
    """A person or tool that runs the bridge: its bearer token opens /v1/ops and every watch."""

    token: SecretStr

    @field_validator("token")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        # It reads every client's watches and redelivers anything: longer than a client's minimum.
        if len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
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


def _slack_api_url(value: str | None) -> str | None:
    if value is None:
        return None
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    # slack-sdk joins method names onto it: without the slash, '.../api' + 'chat.postMessage'
    # would become '.../chat.postMessage'.
    return value if value.endswith("/") else value + "/"


class SlackChannelConfig(_Strict):
    """A Slack channel reached with a bot token through the Web API."""

    type: Literal["slack"]
    token: SecretStr
    channel: str = Field(min_length=1)
    base_url: str | None = None
    # An import's message is edited at most once per this many seconds; the latest state lands.
    edit_interval_s: float = Field(10.0, ge=0, le=3600)

    @field_validator("base_url")
    @classmethod
    def _api_url(cls, value: str | None) -> str | None:
        return _slack_api_url(value)


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
    # Slack and email tell a job of an import inside its import's message and thread, or alone.
    group_by: Literal["import", "job"] = "import"


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


class RetentionConfig(_Strict):
    """How long ended watches (and imports) are kept, with their events and deliveries."""

    days: float = Field(30, gt=0)


class ImportsConfig(_Strict):
    """How imports judge their progress."""

    # An import with active jobs and no image finished for this long is stalled.
    stall_after_s: float = Field(1800, gt=0)
    # An import's jobs wait their turn upstream for days (25 images an hour per key), so their
    # watches live longer than `polling.watch_ttl_h`.
    job_ttl_h: float = Field(720, gt=0)


class TemplatesConfig(_Strict):
    """A folder of template overrides, searched before the packaged templates."""

    dir: Path | None = None


class SlackAppConfig(_Strict):
    """The Slack app: slash commands and buttons from Slack, and the bot token it answers with."""

    signing_secret: SecretStr
    token: SecretStr
    base_url: str | None = None
    allowed_teams: list[str] = Field(default_factory=list)  # empty: any team signed with the secret

    @field_validator("signing_secret", "token")
    @classmethod
    def _not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("base_url")
    @classmethod
    def _api_url(cls, value: str | None) -> str | None:
        return _slack_api_url(value)


class Config(_Strict):
    """The whole operator configuration."""

    server: ServerConfig = Field(default_factory=ServerConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    upstream: UpstreamConfig = Field(default_factory=UpstreamConfig)
    polling: PollingConfig = Field(default_factory=PollingConfig)
    clients: dict[str, ClientConfig] = Field(default_factory=dict)
    operators: dict[str, OperatorConfig] = Field(default_factory=dict)
    channels: dict[str, ChannelConfig] = Field(default_factory=dict)
    routes: list[RouteConfig] = Field(default_factory=list)
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    imports: ImportsConfig = Field(default_factory=ImportsConfig)
    templates: TemplatesConfig = Field(default_factory=TemplatesConfig)
    slack_app: SlackAppConfig | None = None
