"""A model worker's metrics: requests running and waiting, prompt and generated tokens, time to first token, time per
output token, batch size, KV cache memory. Taken from the streams the worker hands out and from
:meth:`ModelBackend.stats`, never from a backend's internals."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from kbqa.llm.backends.base import EventStream, ModelBackend
from kbqa.llm.protocol import GenerateEvent
from kbqa.observability.metrics import LATENCY_BUCKETS

TOKEN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry, backend: ModelBackend) -> None:
        self.backend = backend
        self.waiting_streams = 0  # accepted, no token yet (queued or in prefill)
        self.running_streams = 0  # first token out, not finished
        self.requests = Counter(
            "kbqa_worker_requests",
            "Generation requests finished, by finish reason",
            ["finish_reason"],
            registry=registry,
        )
        self.prompt_tokens = Counter(
            "kbqa_worker_prompt_tokens", "Prompt tokens of finished requests", registry=registry
        )
        self.generation_tokens = Counter(
            "kbqa_worker_generation_tokens", "Tokens generated for finished requests", registry=registry
        )
        self.embedding_inputs = Counter("kbqa_worker_embedding_inputs", "Texts embedded", registry=registry)
        self.ttft = Histogram(
            "kbqa_worker_time_to_first_token_seconds",
            "Request accepted by the worker to its first generated text",
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self.tpot = Histogram(
            "kbqa_worker_time_per_output_token_seconds",
            "Decoding time per generated token after the first, per request",
            registry=registry,
            buckets=TOKEN_BUCKETS,
        )
        self.batch_size = Histogram(
            "kbqa_worker_batch_size",
            "Requests decoding together when a request gets its first token",
            registry=registry,
            buckets=BATCH_BUCKETS,
        )
        # Read when scraped, from the backend when it knows, else from the streams counted here.
        Gauge(
            "kbqa_worker_requests_running",
            "Requests being decoded (backend figure, else: streams past their first token)",
            registry=registry,
        ).set_function(self.running)
        Gauge(
            "kbqa_worker_requests_waiting",
            "Requests waiting for a batch slot (backend figure, else: streams before their first token)",
            registry=registry,
        ).set_function(self.waiting)
        Gauge(
            "kbqa_worker_kv_cache_bytes", "KV cache memory (0: not reported by the backend)", registry=registry
        ).set_function(lambda: float(self.backend.stats().kv_cache_bytes or 0))

    def running(self) -> float:
        found = self.backend.stats().running
        return float(self.running_streams if found is None else found)

    def waiting(self) -> float:
        found = self.backend.stats().waiting
        return float(self.waiting_streams if found is None else found)

    def track(self, stream: EventStream) -> EventStream:
        return _TrackedStream(stream, self)


class _TrackedStream(EventStream):
    def __init__(self, inner: EventStream, metrics: WorkerMetrics) -> None:
        self.inner = inner
        self.metrics = metrics
        self.started = time.perf_counter()
        self.first_at: float | None = None
        self.done = False
        metrics.waiting_streams += 1

    def __aiter__(self) -> _TrackedStream:
        return self

    async def __anext__(self) -> GenerateEvent:
        try:
            event = await self.inner.__anext__()
        except BaseException:
            self._end()
            raise
        m = self.metrics
        if self.first_at is None and (event.text or event.finish_reason is not None):
            self.first_at = time.perf_counter()
            m.ttft.observe(self.first_at - self.started)
            m.waiting_streams -= 1
            m.running_streams += 1
            m.batch_size.observe(max(1.0, m.running()))
        if event.finish_reason is not None and not self.done:
            usage = event.usage
            m.requests.labels(event.finish_reason).inc()
            if usage is not None:
                m.prompt_tokens.inc(usage.prompt_tokens)
                m.generation_tokens.inc(usage.completion_tokens)
                if usage.completion_tokens > 1 and self.first_at is not None:
                    m.tpot.observe((time.perf_counter() - self.first_at) / (usage.completion_tokens - 1))
            self._end()
        return event

    def _end(self) -> None:
        if self.done:
            return
        self.done = True
        if self.first_at is None:
            self.metrics.waiting_streams -= 1
        else:
            self.metrics.running_streams -= 1

    async def aclose(self) -> None:
        self._end()
        await self.inner.aclose()
