"""parse_command(text): what a slash command's text asks for, or why it cannot be read. Pure.

`/photos subscribe account main job.*` reaches the bridge as the text `subscribe account main
job.*`; this module turns it into one of the commands below, or a Mistake whose message the user
sees as it is. Buttons' values (`import:<imp id>`, `job:<watch id>`) are read here too.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Literal

from bridge.events.vocabulary import pattern_problem

IMPORT_ID = re.compile(r"^imp_[0-9a-f]{32}$")
WATCH_ID = re.compile(r"^wat_[0-9a-f]{32}$")
SUBSCRIPTION_ID = re.compile(r"^sub_[0-9a-f]{32}$")
MAX_PATTERNS = 20

USAGE = (
    "`{cmd} help` — this list\n"
    "`{cmd} status <job uuid | wat_… | imp_…>` — the current state of a job, watch or import\n"
    "`{cmd} subscribe account <name> [pattern…]` — hear about every job of an account "
    "(patterns such as `job.*` `item.failed`; default `*`)\n"
    "`{cmd} subscribe import <imp_…>` — hear about one import\n"
    "`{cmd} subscribe job <uuid>` — hear about one job\n"
    "`{cmd} unsubscribe <sub_…>` — stop one of this channel's subscriptions\n"
    "`{cmd} list` — this channel's subscriptions, with their ids"
)


@dataclass(frozen=True, slots=True)
class Help:
    """Show the commands."""


@dataclass(frozen=True, slots=True)
class Status:
    """Show a job (by its upstream uuid), a watch or an import."""

    kind: Literal["job", "watch", "import"]
    ref: str


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Make the channel hear about an account's jobs, an import or a job."""

    kind: Literal["account", "import", "job"]
    target: str
    events: tuple[str, ...] = ("*",)


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """Delete one of the channel's subscriptions."""

    subscription_id: str


@dataclass(frozen=True, slots=True)
class ListSubscriptions:
    """Show the channel's subscriptions."""


@dataclass(frozen=True, slots=True)
class Mistake:
    """Text that is not a command; `message` tells the user what to type instead."""

    message: str


Command = Help | Status | Subscribe | Unsubscribe | ListSubscriptions


def job_uuid(text: str) -> str | None:
    """The canonical (lower-case, hyphenated) form of an upstream job id, or None if not a UUID."""
    if len(text) != 36:
        return None
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def parse_command(text: str) -> Command | Mistake:
    """Read a slash command's text (the words after the command itself)."""
    words = text.split()
    if not words:
        return Help()
    verb, args = words[0].lower(), words[1:]
    if verb == "help":
        return Help()
    if verb == "list":
        return ListSubscriptions() if not args else Mistake("`list` takes nothing after it.")
    if verb == "status":
        return _status(args)
    if verb == "subscribe":
        return _subscribe(args)
    if verb == "unsubscribe":
        return _unsubscribe(args)
    return Mistake(f"Unknown command `{_clip(words[0])}`. Try `help`.")


def _status(args: list[str]) -> Status | Mistake:
    if len(args) != 1:
        return Mistake("Usage: `status <job uuid | wat_… | imp_…>` (one id).")
    ref = args[0]
    if IMPORT_ID.match(ref):
        return Status("import", ref)
    if WATCH_ID.match(ref):
        return Status("watch", ref)
    job = job_uuid(ref)
    if job is not None:
        return Status("job", job)
    return Mistake(f"`{_clip(ref)}` is not a job uuid, a watch id (wat_…) or an import id (imp_…).")


def _subscribe(args: list[str]) -> Subscribe | Mistake:
    usage = "Usage: `subscribe account <name> [pattern…]`, `subscribe import <imp_…>` or `subscribe job <uuid>`."
    if len(args) < 2:
        return Mistake(usage)
    kind, target, rest = args[0].lower(), args[1], args[2:]
    if kind == "account":
        return _subscribe_account(target, rest)
    if rest:
        return Mistake(f"`subscribe {kind}` takes one id; events are chosen only for accounts.")
    if kind == "import":
        if not IMPORT_ID.match(target):
            return Mistake(f"`{_clip(target)}` is not an import id (imp_ and 32 hex digits).")
        return Subscribe("import", target)
    if kind == "job":
        job = job_uuid(target)
        if job is None:
            return Mistake(f"`{_clip(target)}` is not a job id: a job id is a UUID.")
        return Subscribe("job", job)
    return Mistake(usage)


def _subscribe_account(name: str, patterns: list[str]) -> Subscribe | Mistake:
    if len(patterns) > MAX_PATTERNS:
        return Mistake(f"At most {MAX_PATTERNS} event patterns.")
    for pattern in patterns:
        problem = pattern_problem(pattern)
        if problem is not None:
            return Mistake(_clip(problem, 200) + ".")
    return Subscribe("account", name, tuple(dict.fromkeys(patterns)) or ("*",))


def _unsubscribe(args: list[str]) -> Unsubscribe | Mistake:
    if len(args) != 1:
        return Mistake("Usage: `unsubscribe <sub_…>` (`list` shows this channel's).")
    if not SUBSCRIPTION_ID.match(args[0]):
        return Mistake(f"`{_clip(args[0])}` is not a subscription id (sub_…); `list` shows them.")
    return Unsubscribe(args[0])


def parse_button(value: str) -> tuple[Literal["import", "job"], str] | None:
    """A button's value: ("import", imp id) or ("job", watch id); None for anything else."""
    kind, _, ref = value.partition(":")
    if kind == "import" and IMPORT_ID.match(ref):
        return "import", ref
    if kind == "job" and WATCH_ID.match(ref):
        return "job", ref
    return None


def _clip(text: str, limit: int = 60) -> str:
    """Echo user text safely: short, escaped for Slack, without backticks that end a code span."""
    short = text if len(text) <= limit else text[: limit - 1] + "…"
    return slack_escape(short.replace("`", "'"))


def slack_escape(text: str) -> str:
    """Text that Slack shows as it is: no links, mentions or markup made of `<`, `>` and `&`."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
