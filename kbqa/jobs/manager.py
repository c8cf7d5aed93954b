"""A bounded pool of background jobs (uploads, updates, rebuilds) with per-file progress and cancellation.

Ingestion is CPU-heavy and holds a KB's writer lock for its whole run; running it on this pool instead of in request
handlers keeps list/search/chat answering while a large upload is indexed. Jobs live in memory: a restart forgets
them, but not their effect (every committed file is in the database).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kbqa.errors import KBQAError

log = logging.getLogger(__name__)

Progress = Callable[[dict[str, Any]], None]
JobFn = Callable[[Progress, threading.Event], Any]

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
FINISHED = {SUCCEEDED, FAILED, CANCELLED}


class JobNotFound(KBQAError):
    status_code = 404


class JobQueueFull(KBQAError):
    status_code = 503


@dataclass
class Job:
    id: str
    kind: str
    kb: str
    status: str = QUEUED
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    total: int = 0
    finished: int = 0
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    result: Any = None
    cancel: threading.Event = field(default_factory=threading.Event)
    # Every progress event in order, so a stream that joins late (or is slow) still sees all of them.
    events: list[dict[str, Any]] = field(default_factory=list)
    future: Future[Any] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def done(self) -> bool:
        return self.status in FINISHED

    def record(self, event: dict[str, Any]) -> None:
        with self._lock:
            name = str(event.get("file", ""))
            self.total = int(event.get("total", self.total) or self.total)
            self.finished = int(event.get("finished", self.finished) or self.finished)
            if name:
                self.files[name] = {
                    "status": event.get("status", "done"),
                    "chunks": event.get("chunks", 0),
                    "error": event.get("error"),
                }
                if event.get("error"):
                    self.errors[name] = str(event["error"])
            self.events.append(dict(event))

    def events_since(self, index: int) -> list[dict[str, Any]]:
        with self._lock:
            return self.events[index:]

    def snapshot(self, with_files: bool = True) -> dict[str, Any]:
        with self._lock:
            out: dict[str, Any] = {
                "id": self.id,
                "kind": self.kind,
                "knowledge_base_name": self.kb,
                "status": self.status,
                "created_at": self.created_at,
                "started_at": self.started_at,
                "finished_at": self.finished_at,
                "total": self.total,
                "finished": self.finished,
                "failed": len(self.errors),
                "error": self.error,
                "cancel_requested": self.cancel.is_set(),
            }
            if with_files:
                out["files"] = dict(self.files)
                out["errors"] = dict(self.errors)
                out["result"] = self.result if isinstance(self.result, dict) else None
            return out


class JobManager:
    def __init__(self, workers: int, max_queued: int, history: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kbqa-job")
        self._max_queued = max_queued
        self._history = history
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()

    def submit(self, kind: str, kb: str, fn: JobFn, summarize: Callable[[Any], dict[str, Any]] | None = None) -> Job:
        with self._lock:
            waiting = sum(1 for j in self._jobs.values() if j.status == QUEUED)
            if waiting >= self._max_queued:
                raise JobQueueFull(f"{waiting} jobs are already waiting; try again later")
            job = Job(uuid.uuid4().hex, kind, kb)
            self._jobs[job.id] = job
            self._forget_old()
        job.future = self._pool.submit(self._run, job, fn, summarize)
        return job

    def _run(self, job: Job, fn: JobFn, summarize: Callable[[Any], dict[str, Any]] | None) -> Any:
        if job.cancel.is_set():
            job.status, job.finished_at = CANCELLED, time.time()
            return None
        job.status, job.started_at = RUNNING, time.time()
        try:
            result = fn(job.record, job.cancel)
        except KBQAError as exc:
            job.status, job.error = FAILED, exc.message
            job.finished_at = time.time()
            raise
        except Exception as exc:
            log.exception("job %s (%s on %s) failed", job.id, job.kind, job.kb)
            job.status, job.error = FAILED, f"{type(exc).__name__}: {exc}"
            job.finished_at = time.time()
            raise
        job.result = summarize(result) if summarize else result
        job.status = CANCELLED if job.cancel.is_set() else SUCCEEDED
        job.finished_at = time.time()
        return result

    def _forget_old(self) -> None:
        finished = [j.id for j in self._jobs.values() if j.done]
        for job_id in finished[: max(0, len(finished) - self._history)]:
            del self._jobs[job_id]

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound(f"job {job_id} not found")
        return job

    def list(self) -> list[Job]:
        with self._lock:
            return list(reversed(self._jobs.values()))

    def cancel(self, job_id: str) -> Job:
        """Ask a job to stop: a queued one never starts; a running one stops after its current commit group."""
        job = self.get(job_id)
        job.cancel.set()
        if job.status == QUEUED and job.future is not None and job.future.cancel():
            job.status, job.finished_at = CANCELLED, time.time()
        return job

    def shutdown(self) -> None:
        for job in self.list():
            if not job.done:
                job.cancel.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
