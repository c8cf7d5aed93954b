"""Job bodies for the ingestion routes: upload, update, rebuild. Each returns an :class:`IngestReport`."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from kbqa.errors import FileNotInKB
from kbqa.ingest.document import Document
from kbqa.ingest.splitters import SplitConfig
from kbqa.knowledge.service import IngestReport, KnowledgeBaseService

Progress = Callable[[dict[str, Any]], None]
JobFn = Callable[[Progress, threading.Event], IngestReport]


def summarize(report: IngestReport) -> dict[str, Any]:
    return {
        "added": report.added,
        "updated": report.updated,
        "skipped": report.skipped,
        "failed_files": report.failed,
        "skipped_docs": report.skipped_docs,
        "chunks": report.chunks,
        "embedded": report.embedded,
        "seconds": round(report.seconds, 3),
        "cancelled": report.cancelled,
    }


def _merge(into: IngestReport, other: IngestReport) -> None:
    into.added += other.added
    into.updated += other.updated
    into.skipped += other.skipped
    into.failed.update(other.failed)
    into.failed_before += other.failed_before
    into.skipped_docs.update(other.skipped_docs)
    into.chunks += other.chunks
    into.embedded += other.embedded
    into.seconds += other.seconds
    into.cancelled = into.cancelled or other.cancelled


def _add_custom(
    service: KnowledgeBaseService,
    kb: str,
    custom: dict[str, list[Document]],
    split: SplitConfig,
    report: IngestReport,
    progress: Progress,
    cancel: threading.Event,
) -> None:
    for i, (rel, docs) in enumerate(custom.items(), start=1):
        if cancel.is_set():
            report.cancelled = True
            return
        try:
            part = service.add_documents(kb, rel, docs, split=split)
        except FileNotInKB as exc:
            report.skipped_docs[rel] = exc.message
            progress({"file": rel, "status": "skipped", "finished": i, "total": len(custom), "chunks": 0})
            continue
        _merge(report, part)
        progress({"file": rel, "status": "done", "finished": i, "total": len(custom), "chunks": part.chunks})


def ingest_job(
    service: KnowledgeBaseService,
    kb: str,
    paths: list[str] | None,
    split: SplitConfig,
    custom: dict[str, list[Document]] | None = None,
    force: bool = False,
) -> JobFn:
    """Index ``paths`` (None: the whole content folder), then add custom documents (they replace those files)."""

    def run(progress: Progress, cancel: threading.Event) -> IngestReport:
        report = IngestReport()
        if paths is None or paths:
            _merge(report, service.ingest(kb, paths, split=split, force=force, progress=progress, cancel=cancel))
        if custom:
            _add_custom(service, kb, custom, split, report, progress, cancel)
        return report

    return run


def recreate_job(
    service: KnowledgeBaseService, kb: str, split: SplitConfig, embed_model: str | None, vs_type: str | None
) -> JobFn:
    def run(progress: Progress, cancel: threading.Event) -> IngestReport:
        return service.recreate(
            kb, embed_model=embed_model, vs_type=vs_type, split=split, progress=progress, cancel=cancel
        )

    return run
