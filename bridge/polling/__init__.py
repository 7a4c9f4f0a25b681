"""Polling: the upstream client and its parsing, outcomes, the budget, planning and the poller."""
