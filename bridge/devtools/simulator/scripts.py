"""Scripted answers for the next GETs of one job, or of any job of one key: faults on demand."""

from __future__ import annotations

import copy
from collections import deque
from typing import Any

SCRIPT_FIELDS = frozenset({"status", "retry_after", "garbage", "delay_s", "job"})


def check_script(responses: list[dict[str, Any]]) -> None:
    """Raise ValueError when a scripted response has a field the simulator does not know."""
    for response in responses:
        unknown = set(response) - SCRIPT_FIELDS
        if unknown:
            raise ValueError(f"unknown script fields: {sorted(unknown)}")


class Scripts:
    """Queues of scripted responses by job and by key (the Simulator's lock guards them)."""

    def __init__(self) -> None:
        self._by_job: dict[str, deque[dict[str, Any]]] = {}
        self._by_key: dict[str, deque[dict[str, Any]]] = {}

    def for_job(self, job_id: str, responses: list[dict[str, Any]]) -> None:
        """Queue `responses` for the next GETs of `job_id`."""
        self._by_job.setdefault(job_id, deque()).extend(copy.deepcopy(responses))

    def for_key(self, api_key: str, responses: list[dict[str, Any]]) -> None:
        """Queue `responses` for the next GETs of any job of `api_key`."""
        self._by_key.setdefault(api_key, deque()).extend(copy.deepcopy(responses))

    def next(self, *, api_key: str, job_id: str) -> dict[str, Any] | None:
        """Pop the next scripted response for this GET: the job's own first, then the key's."""
        for queue in (self._by_job.get(job_id), self._by_key.get(api_key)):
            if queue:
                return queue.popleft()
        return None
