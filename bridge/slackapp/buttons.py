"""The buttons on the bridge's Slack messages: show_failures (an ephemeral list of failed images)
and mute (this channel stops hearing about that job or import). Values: `import:<imp id>` or
`job:<watch id>`."""

from __future__ import annotations

from typing import Any, Literal

from bridge.events.subscriptions import job_target
from bridge.slackapp.commands import slack_escape
from bridge.slackapp.context import SlackAppContext

SHOW_FAILURES = "show_failures"
MUTE = "mute"
MAX_FAILURES_SHOWN = 20

ButtonKind = Literal["import", "job"]


def _failure_line(name: str | None, code: str | None, message: str | None) -> str:
    why = " — ".join(slack_escape(p[:200]) for p in (code, message) if p)
    return f"• {slack_escape((name or '?')[:100])}: {why or 'failed'}"


async def failures_text(ctx: SlackAppContext, kind: ButtonKind, ref: str) -> str:
    """The failed images of an import, or of a watch's job, at most MAX_FAILURES_SHOWN."""
    if kind == "import":
        record = await ctx.store.imports.get(import_id=ref)
        if record is None:
            return f"No import `{ref}` any more."
        found = await ctx.store.imports.failures(import_id=ref, limit=MAX_FAILURES_SHOWN + 1)
        lines = [
            _failure_line(f.external_id or f.item_id, f.error_code, f.error_message) for f in found
        ]
        title = f"Failed images of import *{slack_escape(record.name)}*"
        more = f"…and more: `GET /v1/imports/{ref}/failures` lists them all, as CSV too."
    else:
        watch = await ctx.store.watches.get(watch_id=ref)
        if watch is None:
            return f"No watch `{ref}` any more."
        items: list[dict[str, Any]] = list((watch.job or {}).get("items") or [])
        failed = [i for i in items if i.get("status") == "failed"]
        lines = [
            _failure_line(
                i.get("external_id") or i.get("id"), i.get("error_code"), i.get("error_message")
            )
            for i in failed
        ]
        title = f"Failed images of job `{watch.job_id}`"
        more = f"…and {len(failed) - MAX_FAILURES_SHOWN} more."
    if not lines:
        return f"{title}: none."
    shown = lines[:MAX_FAILURES_SHOWN]
    tail = [more] if len(lines) > MAX_FAILURES_SHOWN else []
    return "\n".join([f"{title}:", *shown, *tail])


async def mute_text(
    ctx: SlackAppContext, kind: ButtonKind, ref: str, *, channel_id: str, user_id: str | None
) -> str:
    """Mute the import or the watch's job for the channel; say what happened."""
    if kind == "import":
        record = await ctx.store.imports.get(import_id=ref)
        if record is None:
            return f"No import `{ref}` any more."
        target, what = ref, f"import *{slack_escape(record.name)}*"
    else:
        watch = await ctx.store.watches.get(watch_id=ref)
        if watch is None:
            return f"No watch `{ref}` any more."
        target, what = job_target(watch.account, watch.job_id), f"job `{watch.job_id}`"
    fresh = await ctx.store.subscriptions.mute(
        channel_id=channel_id, kind=kind, target=target, created_by=user_id, now=ctx.now()
    )
    if not fresh:
        return f"This channel had already muted {what}."
    await ctx.refresh()
    return f"Muted: this channel hears no more about {what}."
