"""upstream_clients(config): one keep-alive AI Gen Studio client per account; the User-Agent."""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import version

import httpx

from bridge.config import Config
from bridge.upstream import UpstreamClient, make_transport

TransportFactory = Callable[[], httpx.AsyncBaseTransport | None]


def user_agent() -> str:
    """The User-Agent of every outbound request: the bridge and its version."""
    return f"photo-bridge/{version('photo-bridge')}"


def upstream_clients(
    config: Config, transport: TransportFactory | None = None
) -> dict[str, UpstreamClient]:
    """One keep-alive client per configured account."""
    factory = transport or (lambda: make_transport(config.upstream.transport))
    return {
        name: UpstreamClient(
            base_url=config.upstream.base_url,
            api_key=account.api_key.get_secret_value(),
            timeout_s=config.upstream.timeout_s,
            transport=factory(),
            user_agent=user_agent(),
        )
        for name, account in config.upstream.accounts.items()
    }
