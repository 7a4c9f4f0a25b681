"""The operator's configuration: `load_config(path)` -> a typed, checked `Config`."""

from bridge.config.load import (
    ConfigError,
    config_path,
    load_config,
    model_dump_redacted,
    parse_config,
)
from bridge.config.models import (
    DEFAULT_RETRY_SCHEDULE_S,
    AccountConfig,
    ChannelConfig,
    ClientConfig,
    Config,
    DeliveryConfig,
    EmailChannelConfig,
    OperatorConfig,
    PollingConfig,
    RetentionConfig,
    RouteConfig,
    SlackChannelConfig,
    SlackWebhookChannelConfig,
    UpstreamConfig,
    WebhookChannelConfig,
)

__all__ = [
    "DEFAULT_RETRY_SCHEDULE_S",
    "AccountConfig",
    "ChannelConfig",
    "ClientConfig",
    "Config",
    "ConfigError",
    "DeliveryConfig",
    "EmailChannelConfig",
    "OperatorConfig",
    "PollingConfig",
    "RetentionConfig",
    "RouteConfig",
    "SlackChannelConfig",
    "SlackWebhookChannelConfig",
    "UpstreamConfig",
    "WebhookChannelConfig",
    "config_path",
    "load_config",
    "model_dump_redacted",
    "parse_config",
]
