"""Pure: what one poll of a job means. Snapshots, the event vocabulary, diff, payloads, routing."""
