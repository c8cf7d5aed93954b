"""A bounded pool of background jobs (uploads, updates, rebuilds) with per-file progress and cancellation.

Ingestion is CPU-heavy and holds a KB's writer lock for its whole run; running it on this pool instead of in request
handlers keeps list/search/chat answering while a large upload is indexed. With a :class:`JobStore`, jobs are also
saved in the metadata database: after a restart /jobs still lists them, and those the stop cut off are ``interrupted``.
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
from kbqa.jobs.store import PROGRESS_EVERY_S, JobStore

log = logging.getLogger(__name__)

Progress = Callable[[dict[str, Any]], None]
JobFn = Callable[[Progress, threading.Event], Any]
Observer = Callable[["Job", dict[str, Any]], None]

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
INTERRUPTED = "interrupted"  # the server stopped while the job was queued or running
FINISHED = {SUCCEEDED, FAILED, CANCELLED, INTERRUPTED}


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
    def __init__(
        self,
        workers: int,
        max_queued: int,
        history: int,
        store: JobStore | None = None,
        observer: Observer | None = None,
    ) -> None:
        """``observer`` sees every progress event of every job (metrics), in the job's thread."""
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kbqa-job")
        self._observer = observer
        self._max_queued = max_queued
        self._history = history
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._store = store
        if store is not None:
            cut = store.interrupt_unfinished({QUEUED, RUNNING}, INTERRUPTED)
            if cut:
                log.warning("%d background job(s) were cut off by the last stop: marked %s", cut, INTERRUPTED)
            for fields in store.recent(history):
                self._jobs[fields["id"]] = Job(**fields)

    def _save(self, job: Job) -> None:
        if self._store is None:
            return
        try:
            self._store.save(job)
        except Exception:  # the job itself must not fail because its record could not be written
            log.exception("could not save the record of job %s", job.id)

    def submit(self, kind: str, kb: str, fn: JobFn, summarize: Callable[[Any], dict[str, Any]] | None = None) -> Job:
        with self._lock:
            waiting = sum(1 for j in self._jobs.values() if j.status == QUEUED)
            if waiting >= self._max_queued:
                raise JobQueueFull(f"{waiting} jobs are already waiting; try again later")
            job = Job(uuid.uuid4().hex, kind, kb)
            self._jobs[job.id] = job
            self._forget_old()
        self._save(job)
        job.future = self._pool.submit(self._run, job, fn, summarize)
        return job

    def _run(self, job: Job, fn: JobFn, summarize: Callable[[Any], dict[str, Any]] | None) -> Any:
        if job.cancel.is_set():
            job.status, job.finished_at = CANCELLED, time.time()
            self._save(job)
            return None
        job.status, job.started_at = RUNNING, time.time()
        self._save(job)
        last_saved = time.monotonic()

        def progress(event: dict[str, Any]) -> None:
            nonlocal last_saved
            job.record(event)
            if self._observer is not None:
                try:
                    self._observer(job, event)
                except Exception:  # counting must never fail the job
                    log.exception("job observer failed")
            if time.monotonic() - last_saved >= PROGRESS_EVERY_S:
                self._save(job)
                last_saved = time.monotonic()

        try:
            result = fn(progress, job.cancel)
        except KBQAError as exc:
            job.status, job.error = FAILED, exc.message
            job.finished_at = time.time()
            self._save(job)
            raise
        except Exception as exc:
            log.exception("job %s (%s on %s) failed", job.id, job.kind, job.kb)
            job.status, job.error = FAILED, f"{type(exc).__name__}: {exc}"
            job.finished_at = time.time()
            self._save(job)
            raise
        job.result = summarize(result) if summarize else result
        job.status = CANCELLED if job.cancel.is_set() else SUCCEEDED
        job.finished_at = time.time()
        self._save(job)
        return result

    def _forget_old(self) -> None:
        finished = [j.id for j in self._jobs.values() if j.done]
        forget = finished[: max(0, len(finished) - self._history)]
        for job_id in forget:
            del self._jobs[job_id]
        if forget and self._store is not None:
            try:
                self._store.prune(self._history)
            except Exception:
                log.exception("could not prune old job records")

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound(f"job {job_id} not found")
        return job

    def list(self) -> list[Job]:
        with self._lock:
            return list(reversed(self._jobs.values()))

    def count(self, status: str) -> int:
        with self._lock:
            return sum(1 for j in self._jobs.values() if j.status == status)

    def cancel(self, job_id: str) -> Job:
        """Ask a job to stop: a queued one never starts; a running one stops after its current commit group."""
        job = self.get(job_id)
        job.cancel.set()
        if job.status == QUEUED and job.future is not None and job.future.cancel():
            job.status, job.finished_at = CANCELLED, time.time()
            self._save(job)
        return job

    def shutdown(self) -> None:
        for job in self.list():
            if not job.done:
                job.cancel.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
