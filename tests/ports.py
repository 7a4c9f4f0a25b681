"""free_port(): a loopback TCP port nothing listens on at the moment of the call."""

from __future__ import annotations

import socket


def free_port() -> int:
    """Bind port 0 on 127.0.0.1, note the port the kernel chose, and let it go."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
