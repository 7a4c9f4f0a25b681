"""Refusal: a creation the upstream turns down, with its status, code and Retry-After."""

from __future__ import annotations

REUSED = "This Idempotency-Key was already used with a different request body."
BUSY_KEY = "This API key already has the maximum number of active jobs."
BUSY_ACCOUNT = "This account already has the maximum number of active jobs."
TOO_MANY = "Hourly job creation or image limit reached for this API key."


class Refusal(Exception):
    """A request the upstream would refuse: HTTP status, error code, message, Retry-After."""

    def __init__(
        self, status: int, code: str, message: str, *, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
