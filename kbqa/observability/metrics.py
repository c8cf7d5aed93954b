"""Prometheus metrics every server shares: requests by route and status, their latency, and the /metrics route.

Each app gets its own registry (several apps run in one test process, and a server is one process: the uvicorn
servers here run a single worker process each, so no multiprocess collector is needed). Routes are labelled by their
template (``/jobs/{job_id}``), never by the raw path, so a scan of random URLs cannot blow up the series count.
"""

from __future__ import annotations

import hmac
import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kbqa.observability.settings import MetricsSettings

METRICS_PATH = "/metrics"
# Latency buckets from a 1 ms search to a multi-minute CPU answer.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
UNMATCHED = "<unmatched>"


def route_template(scope: Scope) -> str:
    """The matched route's template, set by the router in the scope; UNMATCHED for a 404 of no route."""
    route = scope.get("route")
    return getattr(route, "path", None) or UNMATCHED


class HTTPMetrics:
    def __init__(self, registry: CollectorRegistry, server: str) -> None:
        self.server = server
        self.requests = Counter(
            "kbqa_http_requests",
            "HTTP requests answered, by route template, method and status",
            ["server", "route", "method", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "kbqa_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response body (streams included)",
            ["server", "route", "method"],
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(self.server, route, method, str(status)).inc()
        self.duration.labels(self.server, route, method).observe(seconds)


class MetricsMiddleware:
    """Pure ASGI, so streamed answers pass untouched: the request ends when the last body chunk is sent (or the
    client goes away)."""

    def __init__(self, app: ASGIApp, metrics: HTTPMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") == METRICS_PATH:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app raises before answering

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            self.metrics.observe(route_template(scope), scope["method"], status, time.perf_counter() - started)


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.headers.get("x-api-key", "").strip()


def metrics_route(registry: CollectorRegistry, settings: MetricsSettings) -> Route:
    """GET /metrics in Prometheus' text format. A plain Starlette route: outside the API's schema and its per-route
    dependencies; the key, when set, is checked here."""
    key = settings.api_key.get_secret_value().encode() if settings.api_key else None

    async def metrics(request: Request) -> Response:
        if key is not None and not hmac.compare_digest(_bearer(request).encode(), key):
            return Response(
                "a valid metrics key is required\n", status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Route(METRICS_PATH, metrics, methods=["GET"], include_in_schema=False)


def open_metrics_path(settings: MetricsSettings) -> bool:
    """Whether /metrics should pass a server's own key check: it has a key of its own."""
    return settings.enabled and settings.api_key is not None
