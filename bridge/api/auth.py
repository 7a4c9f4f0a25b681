"""Bearer tokens to client names, compared in constant time; tokens are never logged or echoed."""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping

from bridge.api.errors import ApiError
from bridge.config import ClientConfig

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="photo-bridge"'}


def unauthorized(message: str) -> ApiError:
    """A 401 invalid_token with the Bearer challenge."""
    return ApiError(401, "invalid_token", message, headers=_CHALLENGE)


def bearer_token(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The token of the one `Authorization: Bearer <token>` header, or raise a 401."""
    values = [value for name, value in headers if name.lower() == b"authorization"]
    if not values:
        raise unauthorized("missing Authorization header; send 'Authorization: Bearer <token>'")
    if len(values) > 1:
        raise unauthorized("send exactly one Authorization header")
    scheme, _, token = values[0].strip().partition(b" ")
    token = token.strip()
    if scheme.lower() != b"bearer" or not token or b" " in token:
        raise unauthorized("malformed Authorization header; send 'Authorization: Bearer <token>'")
    return token


def find_client(token: bytes, clients: Mapping[str, ClientConfig]) -> str | None:
    """The client whose token this is; every client is compared, so timing tells nothing."""
    found: str | None = None
    for name, client in clients.items():
        expected = client.token.get_secret_value().encode("utf-8")
        if hmac.compare_digest(token, expected) and found is None:
            found = name
    return found
