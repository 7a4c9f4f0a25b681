"""Delivery: drain the outbox, one attempt per row, the retry policy, signing and the channels."""
