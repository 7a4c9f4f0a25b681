"""status_text(ctx, command): the `status` command's answer — a job, a watch or an import as the
store has it now, in plain Slack text: states and counts, never a URL, token or secret."""

from __future__ import annotations

from typing import Any

from bridge.events.import_view import ImportRecord, import_view
from bridge.slackapp.commands import Status, slack_escape
from bridge.slackapp.context import SlackAppContext
from bridge.store import WatchRecord

MAX_WATCHES_SHOWN = 10


async def status_text(ctx: SlackAppContext, command: Status) -> str:
    """The answer to `status <job uuid | wat_ id | imp_ id>`."""
    if command.kind == "import":
        record = await ctx.store.imports.get(import_id=command.ref)
        if record is None:
            return f"No import `{command.ref}`."
        return _import_text(record, ctx)
    if command.kind == "watch":
        watch = await ctx.store.watches.get(watch_id=command.ref)
        if watch is None:
            return f"No watch `{command.ref}`."
        return f"Watch `{watch.id}` ({_watch_line(watch)})\n{_job_line(watch)}"
    watches = await ctx.store.watches.of_job(
        command.ref, accounts=sorted(ctx.accounts), limit=MAX_WATCHES_SHOWN + 1
    )
    if not watches:
        return f"No watch of job `{command.ref}` on any account: the bridge does not follow it."
    return _job_text(watches)


def _job_text(watches: list[WatchRecord]) -> str:
    lines: list[str] = []
    for account in dict.fromkeys(w.account for w in watches):
        mine = [w for w in watches if w.account == account]
        latest = max(mine, key=lambda w: w.updated_at)
        lines.append(f"Job `{latest.job_id}` on account *{slack_escape(account)}*")
        lines.append(_job_line(latest))
        lines += [f"• watch `{w.id}` ({_watch_line(w)})" for w in mine[:MAX_WATCHES_SHOWN]]
    if len(watches) > MAX_WATCHES_SHOWN:
        lines.append(f"…and more watches than the {MAX_WATCHES_SHOWN} shown.")
    return "\n".join(lines)


def _watch_line(watch: WatchRecord) -> str:
    parts = [f"client {slack_escape(watch.client)}", f"account {slack_escape(watch.account)}"]
    parts.append(f"watch {watch.status}")
    if watch.import_id:
        parts.append(f"import `{watch.import_id}`")
    if watch.error_code:
        parts.append(f"error {slack_escape(watch.error_code)}")
    return ", ".join(parts)


def _job_line(watch: WatchRecord) -> str:
    job: dict[str, Any] | None = watch.job
    if not job:
        return f"Job `{watch.job_id}`: not polled yet."
    status = slack_escape(str(job.get("status") or "unknown").replace("_", " "))
    total = int(job.get("total_items") or 0)
    done = int(job.get("completed_items") or 0)
    failed = int(job.get("failed_items") or 0)
    credits = int(job.get("credits_used") or 0)
    return (
        f"Job `{watch.job_id}`: *{status}* — {done} of {total} images done, {failed} failed, "
        f"{credits} credits used"
    )


def _import_text(record: ImportRecord, ctx: SlackAppContext) -> str:
    view = import_view(record, now=ctx.now())
    jobs, images = view["jobs"], view["images"]
    finished = jobs.get("total", 0) - jobs.get("active", 0)
    lines = [
        f"Import `{record.id}` *{slack_escape(record.name)}* "
        f"(account {slack_escape(record.account)}): *{slack_escape(str(view['status']).replace('_', ' '))}*"
        + (" — stalled" if view["stalled"] else ""),
        f"Jobs: {finished} of {jobs.get('total', 0)} done ({jobs.get('failed', 0)} failed, "
        f"{jobs.get('active', 0)} active)" + ("" if view["closed"] else ", still taking jobs"),
        f"Images: {images['completed']} completed, {images['failed']} failed, "
        f"{images['pending']} pending of {images['total']}; {view['credits_used']} credits used",
    ]
    if view["eta"]:
        lines.append(f"ETA {view['eta']} at {view['rate_images_per_hour']:.1f} images an hour")
    return "\n".join(lines)
