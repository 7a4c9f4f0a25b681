"""UpstreamPool(config): one AI Gen Studio client per account over one shared connection pool."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from bridge.config import Config
from bridge.outbound import USER_AGENT
from bridge.polling.upstream import LIMITS, UpstreamClient, make_transport
from bridge.polling.wire import Borrowed

TransportFactory = Callable[[], httpx.AsyncBaseTransport]


def default_transport(kind: str) -> httpx.AsyncBaseTransport:
    """The transport for `kind` ("aiohttp" or "httpx"), built once per process."""
    return make_transport(kind) or httpx.AsyncHTTPTransport(limits=LIMITS)


class UpstreamPool(dict[str, UpstreamClient]):
    """Every configured account's client, by account name.

    Each account keeps its own client (its key, its headers), but all share one keep-alive pool and
    TLS context: they talk to one host, and 10,000 accounts must not mean 10,000 pools.
    """

    def __init__(self, config: Config, transport: TransportFactory | None = None) -> None:
        self._shared = (transport or (lambda: default_transport(config.upstream.transport)))()
        super().__init__(
            {
                name: UpstreamClient(
                    base_url=config.upstream.base_url,
                    api_key=account.api_key.get_secret_value(),
                    timeout_s=config.upstream.timeout_s,
                    transport=Borrowed(self._shared),
                    user_agent=USER_AGENT,
                )
                for name, account in config.upstream.accounts.items()
            }
        )

    async def aclose(self) -> None:
        """Close every client, then the shared pool."""
        for client in self.values():
            await client.aclose()
        await self._shared.aclose()
