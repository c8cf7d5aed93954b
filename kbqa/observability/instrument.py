"""What every server's app gets: GET /metrics with request counting, and the request id with one log line per
request."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from kbqa.observability.metrics import HTTPMetrics, MetricsMiddleware, metrics_route
from kbqa.observability.request_log import RequestLogMiddleware
from kbqa.observability.settings import LoggingSettings, MetricsSettings


def instrument_app(
    app: FastAPI,
    server: str,
    metrics: MetricsSettings | None = None,
    registry: CollectorRegistry | None = None,
    log_settings: LoggingSettings | None = None,
) -> CollectorRegistry:
    """Call after the app's other middleware: these layers go outermost, so refused requests are counted and logged
    too, and the request id is set before anything else runs. ``server`` labels the series and the log lines.
    Returns the registry for the server's own metrics."""
    metrics = metrics or MetricsSettings()
    log_settings = log_settings or LoggingSettings()
    registry = registry if registry is not None else CollectorRegistry()
    if metrics.enabled:
        app.router.routes.append(metrics_route(registry, metrics))
        app.add_middleware(MetricsMiddleware, metrics=HTTPMetrics(registry, server))
    app.add_middleware(RequestLogMiddleware, server=server, log_requests=log_settings.requests)
    return registry
