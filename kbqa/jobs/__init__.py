"""Background jobs: ingestion work on a bounded pool, with per-file progress, errors and cancellation."""
