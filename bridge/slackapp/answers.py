"""answer(ctx, command, asker): do what a parsed slash command asks and say how it went, as the
ephemeral text the user sees. Subscriptions change here, and routing follows at once."""

from __future__ import annotations

from dataclasses import dataclass

from bridge.events.subscriptions import Subscription
from bridge.slackapp.commands import (
    USAGE,
    Command,
    Help,
    ListSubscriptions,
    Status,
    Subscribe,
    Unsubscribe,
    slack_escape,
)
from bridge.slackapp.context import SlackAppContext
from bridge.slackapp.status import MAX_WATCHES_SHOWN, status_text
from bridge.store.subscriptions import AlreadySubscribed

MAX_LISTED = 100
MAX_PER_CHANNEL = 100  # routing reads every subscription for every event: keep the set small


@dataclass(frozen=True, slots=True)
class Asker:
    """Who typed the command, and where."""

    team_id: str
    channel_id: str
    user_id: str | None
    command: str = "/photos"


def describe(sub: Subscription) -> str:
    """One subscription as `list` and the confirmations show it."""
    what = {"account": "account", "import": "import", "job": "job"}[sub.kind]
    target = f"*{slack_escape(sub.target)}*" if sub.kind == "account" else f"`{sub.target}`"
    events = "" if sub.events == ("*",) else f" (events: {slack_escape(' '.join(sub.events))})"
    return f"{what} {target}{events}"


async def answer(ctx: SlackAppContext, command: Command, asker: Asker) -> str:
    """Carry out `command` for `asker` and return the reply."""
    if isinstance(command, Help):
        return "Commands:\n" + USAGE.format(cmd=asker.command)
    if isinstance(command, Status):
        return await status_text(ctx, command)
    if isinstance(command, Subscribe):
        return await _subscribe(ctx, command, asker)
    if isinstance(command, Unsubscribe):
        return await _unsubscribe(ctx, command, asker)
    assert isinstance(command, ListSubscriptions)
    return await list_text(ctx, asker)


async def _target_account(ctx: SlackAppContext, command: Subscribe) -> tuple[str | None, str]:
    """(account, "") for a known target, or (None, why not)."""
    if command.kind == "account":
        if command.target in ctx.accounts:
            return command.target, ""
        known = ", ".join(sorted(ctx.accounts)) or "none"
        name = slack_escape(command.target[:60])
        return None, f"No account named *{name}*. Accounts: {known}."
    if command.kind == "import":
        record = await ctx.store.imports.get(import_id=command.target)
        if record is None:
            return None, f"No import `{command.target}`."
        return record.account, ""
    watches = await ctx.store.watches.of_job(
        command.target, accounts=sorted(ctx.accounts), limit=MAX_WATCHES_SHOWN
    )
    # A job the bridge does not watch yet may still be subscribed to: discovery may find it.
    accounts = {w.account for w in watches}
    return (accounts.pop() if len(accounts) == 1 else None), ""


async def _subscribe(ctx: SlackAppContext, command: Subscribe, asker: Asker) -> str:
    account, problem = await _target_account(ctx, command)
    if problem:
        return problem
    if len(await ctx.store.subscriptions.of_channel(asker.channel_id)) >= MAX_PER_CHANNEL:
        return (
            f"This channel has {MAX_PER_CHANNEL} subscriptions, the most it may have; "
            "unsubscribe from one first."
        )
    try:
        sub = await ctx.store.subscriptions.subscribe(
            team_id=asker.team_id,
            channel_id=asker.channel_id,
            kind=command.kind,
            target=command.target,
            account=account,
            events=command.events,
            created_by=asker.user_id,
            now=ctx.now(),
        )
    except AlreadySubscribed as exc:
        return (
            f"This channel is already subscribed to {describe(exc.existing)}: `{exc.existing.id}`."
        )
    await ctx.refresh()
    return (
        f"Subscribed this channel to {describe(sub)}: `{sub.id}`.\n"
        f"`{asker.command} unsubscribe {sub.id}` stops it."
    )


async def _unsubscribe(ctx: SlackAppContext, command: Unsubscribe, asker: Asker) -> str:
    done = await ctx.store.subscriptions.unsubscribe(
        subscription_id=command.subscription_id, channel_id=asker.channel_id
    )
    if not done:
        return (
            f"This channel has no subscription `{command.subscription_id}`; "
            f"`{asker.command} list` shows its subscriptions."
        )
    await ctx.refresh()
    return f"Unsubscribed: `{command.subscription_id}` is gone."


async def list_text(ctx: SlackAppContext, asker: Asker) -> str:
    """This channel's subscriptions, oldest first, with their ids."""
    subs = await ctx.store.subscriptions.of_channel(asker.channel_id)
    if not subs:
        return f"This channel has no subscriptions. `{asker.command} help` shows how to add one."
    lines = [f"This channel's subscriptions ({len(subs)}):"]
    lines += [f"• `{s.id}` — {describe(s)}" for s in subs[:MAX_LISTED]]
    if len(subs) > MAX_LISTED:
        lines.append(f"…and {len(subs) - MAX_LISTED} more.")
    return "\n".join(lines)
