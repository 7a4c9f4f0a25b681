"""A Slack message's durable state (channel, ts, what its thread has had) and the claim that lets
exactly one send post a message's first version, whatever the number of replicas."""

from __future__ import annotations

from typing import Any

from bridge.delivery.channels import SendError, StateStore


class SlackSendError(SendError):
    """A failed Slack call; `slack_error` is Slack's error code (e.g. 'ratelimited') when it gave one."""

    def __init__(self, message: str, *, slack_error: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.slack_error = slack_error


# A claim to post a message's first version older than this belongs to a sender that died: the
# send timeout is seconds, so nobody still holding it could be about to post.
STALE_CLAIM_S = 600.0


async def read_state(state: StateStore, key: str) -> dict[str, Any]:
    """What is stored under `key` ({} when nothing); a store failure is worth a retry."""
    try:
        return await state.get_state(key) or {}
    except Exception as exc:  # the store is the database: any failure is worth a retry
        raise SendError(f"channel state unavailable: {type(exc).__name__}") from None


async def write_state(state: StateStore, key: str, value: dict[str, Any]) -> None:
    """Store `value` under `key`; a store failure is worth a retry."""
    try:
        await state.put_state(key, value)
    except Exception as exc:
        raise SendError(f"channel state not saved: {type(exc).__name__}") from None


async def claim_first_post(
    state: StateStore, key: str, *, delivery_id: str, now_s: float
) -> dict[str, Any] | None:
    """None when this delivery may post the message, else the state another send stored with
    the message's `ts`; raises a (retried) SendError while another send is posting it.

    The claim is a row only one writer can insert (every replica shares it), naming this
    delivery: its own retry may post again, anyone else waits until the winner's `ts` is stored,
    or until the claim is so old that its sender must be gone.
    """
    mine = {"posting": delivery_id, "since": now_s}
    try:
        held = await state.claim_state(key, mine)
    except Exception as exc:  # the store is the database: any failure is worth a retry
        raise SendError(f"channel state unavailable: {type(exc).__name__}") from None
    if held is None or held.get("posting") == delivery_id:
        return None
    if held.get("ts"):
        return await read_state(state, key)
    if now_s - float(held.get("since") or 0) > STALE_CLAIM_S:
        await write_state(state, key, mine)
        return None
    raise SendError("another send is posting this message's first version; trying again later")
