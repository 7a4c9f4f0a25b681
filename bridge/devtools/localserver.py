"""Serve an ASGI app with uvicorn inside the running event loop (demo, tests, benchmarks)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import uvicorn


class LocalServer:
    """A uvicorn server started in the current loop on 127.0.0.1, port 0 picks a free one."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Inherited by accepted sockets; without it Nagle + delayed ACK add ~40 ms per keep-alive reply.
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.bind((host, port))
        self.host = host
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(
            app, log_level="warning", lifespan="auto", access_log=False, timeout_graceful_shutdown=5
        )
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash."""
        return f"http://{self.host}:{self.port}"

    async def start(self, *, within_s: float = 10.0) -> None:
        """Start serving and return once the socket accepts connections."""
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        async with asyncio.timeout(within_s):
            while not self._server.started:
                if self._task.done():
                    self._task.result()
                    raise RuntimeError("server stopped before it started")
                await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop serving and wait for the server task to end."""
        self._server.should_exit = True
        if self._task is not None:
            await self._task
        self._sock.close()


@contextlib.asynccontextmanager
async def serving(
    app: Any, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[LocalServer]:
    """Serve `app` for the duration of the block."""
    server = LocalServer(app, host=host, port=port)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
