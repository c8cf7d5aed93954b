"""Job bodies for the ingestion routes: upload, update, rebuild (each returns an :class:`IngestReport`), and backup:
export and import (each returns a :class:`BackupReport`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kbqa.errors import FileNotInKB
from kbqa.ingest.document import Document
from kbqa.ingest.splitters import SplitConfig
from kbqa.knowledge import backup
from kbqa.knowledge.backup import BackupReport
from kbqa.knowledge.service import IngestReport, KnowledgeBaseService

Progress = Callable[[dict[str, Any]], None]
JobFn = Callable[[Progress, threading.Event], IngestReport]
BackupJobFn = Callable[[Progress, threading.Event], BackupReport]


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


def export_job(service: KnowledgeBaseService, kb: str, target: Path) -> BackupJobFn:
    def run(progress: Progress, cancel: threading.Event) -> BackupReport:
        return backup.export_kb(service, kb, target, progress=progress, cancel=cancel)

    return run


def import_job(
    service: KnowledgeBaseService, archive: Path, new_name: str, overwrite: bool, reembed: bool, embed_model: str | None
) -> BackupJobFn:
    """Import ``archive`` (an upload the job owns: removed when the job ends, however it ends)."""

    def run(progress: Progress, cancel: threading.Event) -> BackupReport:
        try:
            return backup.import_kb(
                service,
                archive,
                new_name=new_name,
                overwrite=overwrite,
                reembed=reembed,
                embed_model=embed_model,
                progress=progress,
                cancel=cancel,
            )
        finally:
            archive.unlink(missing_ok=True)

    return run
