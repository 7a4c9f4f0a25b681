"""Whether the upstream has really refused an account's API key. Pure: no I/O, no clock.

One 401 can be a blip at the upstream (a key cache, a deploy); failing every watch of the account on
it is what a revoked key deserves, not a blip. So a 401 is believed only when another one comes at
least CONFIRM_AFTER after the first with no accepted poll between; the first 401's time lives in the
account's stored budget row, so replicas and restarts share it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from bridge.polling.outcomes import Malformed, NotFound, Ok, Outcome, Unauthorized
from bridge.store.rows import BudgetRow

CONFIRM_AFTER = timedelta(seconds=60)
_ACCEPTED = (Ok, NotFound, Malformed)  # answers the upstream gives only to a key it knows


def key_verdict(outcomes: list[Outcome]) -> bool | None:
    """What one batch of an account's polls says of its key: True accepted, False refused (a 401
    and no accepted answer), None nothing (5xx, timeouts)."""
    if any(isinstance(o, _ACCEPTED) for o in outcomes):
        return True
    if any(isinstance(o, Unauthorized) for o in outcomes):
        return False
    return None


def observe_key(state: BudgetRow, *, accepted: bool, now: datetime) -> BudgetRow:
    """Fold a verdict into the row: an accepted poll forgets every 401, a refused one starts the clock."""
    if accepted:
        return replace(state, unauthorized_since=None)
    return replace(state, unauthorized_since=state.unauthorized_since or now)


def key_refused(state: BudgetRow, *, now: datetime) -> bool:
    """True once the key was refused again at least CONFIRM_AFTER after its first refusal."""
    since = state.unauthorized_since
    return since is not None and now - since >= CONFIRM_AFTER
