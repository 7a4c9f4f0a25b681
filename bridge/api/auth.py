"""Bearer tokens to the client or operator that holds them, compared in constant time; tokens are
never logged or echoed."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from bridge.api.errors import ApiError
from bridge.config import ClientConfig, OperatorConfig

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


@dataclass(frozen=True, slots=True)
class Principal:
    """Who sent a request: a client (its own watches) or an operator (everything, and /v1/ops)."""

    kind: Literal["client", "operator"]
    name: str

    @property
    def key(self) -> str:
        """The rate limiter's key: a client and an operator of one name keep separate buckets."""
        return f"{self.kind}:{self.name}"


def identify(
    token: bytes,
    *,
    clients: Mapping[str, ClientConfig],
    operators: Mapping[str, OperatorConfig],
) -> Principal | None:
    """The client or operator whose token this is; every token is compared, so timing tells nothing."""
    holders: list[tuple[Principal, ClientConfig | OperatorConfig]] = [
        *((Principal("client", name), c) for name, c in clients.items()),
        *((Principal("operator", name), o) for name, o in operators.items()),
    ]
    # Digests, not the tokens: compare_digest returns at once on inputs of different lengths,
    # which would tell a caller how long each configured token is.
    offered = hashlib.sha256(token).digest()
    found: Principal | None = None
    for principal, holder in holders:
        expected = hashlib.sha256(holder.token.get_secret_value().encode("utf-8")).digest()
        if hmac.compare_digest(offered, expected) and found is None:
            found = principal
    return found
