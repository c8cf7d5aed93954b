"""What an operator watches: Prometheus metrics and per-request logs, shared by every server."""
