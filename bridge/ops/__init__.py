"""Ops: structured logs and Prometheus metrics."""
