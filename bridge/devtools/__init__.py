"""Dev tools: demo, dev, send-test, the upstream simulator and a local server. `serve` never imports these."""
