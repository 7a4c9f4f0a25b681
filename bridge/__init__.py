"""photo-bridge: watches AI Gen Studio product photo jobs."""
