"""Jobs saved in the metadata database, so /jobs still answers for them after the API server restarts.

A job is saved when it is submitted, when it starts, at most every ``PROGRESS_EVERY_S`` while it runs, and when it
ends. On start-up, jobs a stopped server left queued or running are marked ``interrupted``: the files they had
committed are in the knowledge base, the others are listed as not indexed and can be re-indexed.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update

from kbqa.db.engine import Database
from kbqa.db.models import JobRecord

if TYPE_CHECKING:
    from kbqa.jobs.manager import Job

PROGRESS_EVERY_S = 2.0
INTERRUPTED_MESSAGE = (
    "the API server stopped before this job finished; the files it had indexed are in the knowledge base, "
    "the others are listed as not indexed: re-index them"
)


class JobStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def save(self, job: Job) -> None:
        snap = job.snapshot()
        row = JobRecord(kb=snap["knowledge_base_name"], **{c: snap[c] for c in _COLUMNS})
        with self.db.session() as s:
            s.merge(row)

    def interrupt_unfinished(self, unfinished: set[str], status: str) -> int:
        """Mark jobs a previous server left unfinished; returns how many."""
        with self.db.session() as s:
            result = s.execute(
                update(JobRecord)
                .where(JobRecord.status.in_(unfinished))
                .values(status=status, error=INTERRUPTED_MESSAGE, finished_at=time.time())
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def recent(self, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` jobs, oldest first, as the fields of a job."""
        with self.db.read() as s:
            rows = s.scalars(select(JobRecord).order_by(JobRecord.created_at.desc()).limit(limit)).all()
            return [_fields(r) for r in reversed(rows)]

    def prune(self, keep: int) -> None:
        """Forget all but the newest ``keep`` jobs."""
        with self.db.session() as s:
            newest = select(JobRecord.id).order_by(JobRecord.created_at.desc()).limit(keep)
            s.execute(delete(JobRecord).where(JobRecord.id.not_in(newest)))


# Columns named as the job's own fields (the KB is ``kb`` in the table, ``knowledge_base_name`` in a snapshot).
_COLUMNS = (
    "id",
    "kind",
    "status",
    "created_at",
    "started_at",
    "finished_at",
    "total",
    "finished",
    "error",
    "result",
    "files",
    "errors",
)


def _fields(row: JobRecord) -> dict[str, Any]:
    return {"kb": row.kb, **{c: getattr(row, c) for c in _COLUMNS}}
