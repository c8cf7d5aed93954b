"""Job records in a real SQLite file: saved through a job's life, reloaded by the next server, unfinished ones
marked interrupted."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from kbqa.db.engine import Database
from kbqa.jobs.manager import INTERRUPTED, RUNNING, SUCCEEDED, Job, JobManager
from kbqa.jobs.store import INTERRUPTED_MESSAGE, JobStore


def database(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'info.db'}")
    db.create_tables()
    return db


def test_a_finished_job_is_reloaded_with_its_files_and_result(tmp_path: Path) -> None:
    db = database(tmp_path)
    manager = JobManager(1, 4, 10, JobStore(db))

    def body(progress: Any, cancel: threading.Event) -> dict[str, Any]:
        progress({"file": "a.txt", "status": "done", "finished": 1, "total": 2, "chunks": 3})
        progress({"file": "b.txt", "status": "failed", "finished": 2, "total": 2, "error": "cannot parse"})
        return {"added": ["a.txt"]}

    job = manager.submit("upload_docs", "kb", body)
    assert job.future is not None
    job.future.result(timeout=30)
    manager.shutdown()

    reloaded = JobManager(1, 4, 10, JobStore(db))
    again = reloaded.get(job.id).snapshot()
    assert again["status"] == SUCCEEDED and again["knowledge_base_name"] == "kb"
    assert again["files"]["a.txt"] == {"status": "done", "chunks": 3, "error": None}
    assert again["errors"] == {"b.txt": "cannot parse"} and again["result"] == {"added": ["a.txt"]}
    assert (again["total"], again["finished"]) == (2, 2)
    reloaded.shutdown()


def test_jobs_a_stop_cut_off_are_marked_interrupted(tmp_path: Path) -> None:
    db = database(tmp_path)
    store = JobStore(db)
    running = Job("a" * 32, "upload_docs", "kb", status=RUNNING, started_at=time.time(), total=5, finished=2)
    running.files = {"x.txt": {"status": "done", "chunks": 1, "error": None}}
    store.save(running)  # as saved by a server killed while this job ran
    manager = JobManager(1, 4, 10, store)
    snap = manager.get(running.id).snapshot()
    assert snap["status"] == INTERRUPTED and snap["error"] == INTERRUPTED_MESSAGE
    assert snap["finished_at"] is not None and snap["files"] == running.files and snap["finished"] == 2
    manager.shutdown()


def test_only_the_newest_jobs_are_kept(tmp_path: Path) -> None:
    db = database(tmp_path)
    manager = JobManager(1, 4, 3, JobStore(db))
    ids = []
    for n in range(6):
        job = manager.submit("update_docs", "kb", lambda progress, cancel, n=n: {"n": n})
        assert job.future is not None
        job.future.result(timeout=30)
        ids.append(job.id)
        time.sleep(0.01)  # distinct creation times
    manager.shutdown()
    kept = [j.id for j in JobManager(1, 4, 3, JobStore(db)).list()]
    assert kept == ids[::-1][:3]  # newest first
