"""The API server's own metrics: search latency, knowledge-base chat latency (first token and whole answer) and
ingestion (files, chunks, failures, jobs waiting and running). Chunks per second is ``rate(kbqa_ingest_chunks_total)``
in Prometheus; docs/grafana-dashboard.json graphs it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from kbqa.chat.retrieval import Searcher
from kbqa.jobs.manager import QUEUED, RUNNING, Job, JobManager
from kbqa.observability.metrics import LATENCY_BUCKETS

T = TypeVar("T")
INGEST_KINDS = frozenset({"upload_docs", "update_docs", "recreate_vector_store"})


class APIMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.search_seconds = Histogram(
            "kbqa_search_seconds",
            "Retrieval time of one search (search_docs, and the retrieval step of KB chat)",
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self.kb_chat_first_token = Histogram(
            "kbqa_kb_chat_first_token_seconds",
            "Knowledge-base chat (/chat/knowledge_base_chat, /kb/v1): request start to the first answer token",
            ["route"],
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self.kb_chat_seconds = Histogram(
            "kbqa_kb_chat_seconds",
            "Knowledge-base chat: request start to the end of the answer",
            ["route"],
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self.ingest_files = Counter(
            "kbqa_ingest_files",
            "Files handled by ingestion jobs, by outcome (done, skipped, failed)",
            ["status"],
            registry=registry,
        )
        self.ingest_chunks = Counter("kbqa_ingest_chunks", "Chunks indexed by ingestion jobs", registry=registry)
        self.jobs = Gauge("kbqa_jobs", "Background jobs by state", ["state"], registry=registry)

    def watch_jobs(self, jobs: JobManager) -> None:
        # Read when scraped: the figures are never stale and nothing has to keep them up to date.
        self.jobs.labels("queued").set_function(lambda: jobs.count(QUEUED))
        self.jobs.labels("running").set_function(lambda: jobs.count(RUNNING))

    def job_event(self, job: Job, event: dict[str, Any]) -> None:
        """JobManager's observer: count the files and chunks of ingestion jobs."""
        if job.kind not in INGEST_KINDS or "file" not in event:
            return
        status = str(event.get("status", "done"))
        self.ingest_files.labels("failed" if event.get("error") else status).inc()
        if status == "done":
            self.ingest_chunks.inc(int(event.get("chunks", 0) or 0))

    def timed_searcher(self, searcher: Searcher) -> Searcher:
        def search(*args: Any, **kwargs: Any) -> Any:
            with self.search_seconds.time():
                return searcher(*args, **kwargs)

        return search  # type: ignore[return-value]

    def timed_answer(
        self, route: str, started: float, events: AsyncIterator[T], is_token: Callable[[T], bool]
    ) -> AsyncIterator[T]:
        """``events`` unchanged, timing the first event that carries answer text and the end of the stream."""

        async def timed() -> AsyncIterator[T]:
            first = True
            try:
                async for event in events:
                    if first and is_token(event):
                        first = False
                        self.kb_chat_first_token.labels(route).observe(time.perf_counter() - started)
                    yield event
            finally:
                self.kb_chat_seconds.labels(route).observe(time.perf_counter() - started)

        return timed()

    def observe_answer(self, route: str, started: float) -> None:
        """A whole answer at once (stream=false): its first token is its end."""
        seconds = time.perf_counter() - started
        self.kb_chat_first_token.labels(route).observe(seconds)
        self.kb_chat_seconds.labels(route).observe(seconds)
