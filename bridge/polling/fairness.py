"""fair_order: which due jobs an account polls first when its budget cannot poll them all. Pure.

Clients take turns (fair queuing): each poll goes to the waiting client served longest ago (one not
served in the rolling hour first), and within a client's turn its own queue decides: a job whose
watch was just registered, or that the upstream signalled, first; then the longest overdue; then the
least recently polled. So a new watch is still polled first whenever its client's turn is next, but
a client registering watches faster than the budget polls them gets its share (1/n of the polls
while n clients wait) and no more: every other waiting client's job is polled at least once every n
polls. A job several clients watch waits in each one's queue and is charged to the turn that takes it.
"""

from __future__ import annotations

import heapq
from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from bridge.store.rows import Waiting

NEVER = datetime.min.replace(tzinfo=UTC)
Urgency = tuple[int, datetime, datetime]
Turn = tuple[int, float, Urgency, str]  # (round, when served, urgency of its best job, client)


def _urgency(job: Waiting) -> Urgency:
    return (-job.priority, job.due_at, job.last_polled_at or NEVER)


def fair_order(queue: Sequence[Waiting], last_served: Mapping[str, datetime]) -> list[Waiting]:
    """Every distinct job of `queue` once, in the order clients' turns take them."""
    by_client: dict[str, deque[Waiting]] = defaultdict(deque)
    for job in sorted(queue, key=_urgency):
        by_client[job.client].append(job)
    turns: list[Turn] = []
    for client, jobs in by_client.items():
        served_at = last_served.get(client)
        # A client not served in the rolling hour first; ties go to the most urgent job.
        when = served_at.timestamp() if served_at is not None else float("-inf")
        turns.append((0, when, _urgency(jobs[0]), client))
    heapq.heapify(turns)
    order: list[Waiting] = []
    taken: set[tuple[str, str]] = set()
    while turns:
        _, _, _, client = heapq.heappop(turns)
        jobs = by_client[client]
        while jobs and (jobs[0].account, jobs[0].job_id) in taken:
            jobs.popleft()  # another client's turn already took this shared job
        if not jobs:
            continue
        job = jobs.popleft()
        order.append(job)
        taken.add((job.account, job.job_id))
        if jobs:  # served now: after every client still waiting for its turn in this claim
            heapq.heappush(turns, (1, float(len(order)), _urgency(jobs[0]), client))
    return order
