"""The operators' console: server-rendered HTML pages under /console/ (CONTRACT section 8)."""
