"""What registering a watch or an import checks alike: the Idempotency-Key header, the account the
client may use, and the webhook URL guard."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping

from starlette.requests import Request

from bridge.api.context import ApiContext
from bridge.api.errors import ApiError, invalid
from bridge.api.schemas import IDEMPOTENCY_KEY_PATTERN
from bridge.config import AccountConfig, ClientConfig
from bridge.delivery.urlguard import UnsafeURL, check_url

DNS_TIMEOUT_S = 5.0
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


def idempotency_key(request: Request) -> str | None:
    """The request's one Idempotency-Key header, if it sent one; a malformed one is a 400."""
    values = request.headers.getlist("idempotency-key")
    if not values:
        return None
    if len(values) > 1 or not _IDEMPOTENCY_KEY.fullmatch(values[0]):
        raise invalid(
            "Idempotency-Key", "must be one header of 1 to 255 printable ASCII characters"
        )
    return values[0]


def allowed_account(
    requested: str | None, *, client: ClientConfig, accounts: Mapping[str, AccountConfig]
) -> str:
    """The account asked for (or the client's only one), if the client may use it: else 400/403."""
    if requested is None:
        if len(client.accounts) != 1:
            raise invalid("account", "is required: this client may watch several accounts")
        requested = client.accounts[0]
    if requested not in client.accounts or requested not in accounts:
        raise ApiError(
            403, "account_not_allowed", f"account: this client may not watch {requested!r}"
        )
    return requested


async def check_webhook(url: str, *, client: ClientConfig, api: ApiContext) -> None:
    """A 400 when the client cannot sign, a 422 when the URL is not https or reaches inside."""
    if not client.webhook_secrets:
        raise invalid("webhook_url", "client has no webhook_secrets configured")
    try:
        async with asyncio.timeout(DNS_TIMEOUT_S):
            await check_url(url, allowed_hosts=api.allowed_hosts, resolve=api.resolve)
    except UnsafeURL as exc:
        raise ApiError(422, "unsafe_webhook_url", f"webhook_url: {exc}") from None
    except TimeoutError:
        raise ApiError(
            422, "unsafe_webhook_url", "webhook_url: resolving its host timed out"
        ) from None


def watch_limit_reached(limit: int) -> ApiError:
    """The 429 for a client at its max_active_watches."""
    return ApiError(
        429,
        "watch_limit_reached",
        f"this client already has {limit} active watches, its max_active_watches; "
        "cancel one or wait for one to end",
    )


def import_not_found() -> ApiError:
    """The 404 for an import that does not exist or is another client's."""
    return ApiError(404, "import_not_found", "no such import")


def import_closed() -> ApiError:
    """The 409 for a job added to an import that takes no more."""
    return ApiError(409, "import_closed", "the import is closed: it takes no more jobs")
