"""KnowledgeBaseService: the one place that coordinates content files, the metadata DB and the vector index.

Write order, for crash safety: content file (temp + rename) → one DB transaction (file row, chunks with their
embeddings, KB generation + 1) → publish the new in-memory index → save the index (temp + rename) at the end of the
operation. A kill between any two steps leaves the DB consistent, and the next open rebuilds an index whose
generation lags from the stored embeddings. Writers to one KB are serialised by a per-KB lock; searches use the last
published index and never wait for a writer.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from kbqa.db import fulltext, schema_version
from kbqa.db import repository as repo
from kbqa.db.engine import Database
from kbqa.db.models import KnowledgeFile
from kbqa.embeddings.pool import EmbedderPool
from kbqa.errors import ChunkNotFound, FileNotInKB, InvalidName, KBExists, KBNotFound, KBQAError
from kbqa.ingest import loaders
from kbqa.ingest.document import Document
from kbqa.ingest.keywords import index_text
from kbqa.ingest.pipeline import PreparedFile, embed_files, prepare_file, prepare_many, text_sha256
from kbqa.ingest.splitters import SplitConfig
from kbqa.knowledge import backup, chatchat_import
from kbqa.knowledge.chatchat_import import PENDING, ImportReport
from kbqa.knowledge.content import FileDigest, KBFolder, digest_file
from kbqa.knowledge.index_cache import IndexCache, IndexState
from kbqa.knowledge.locking import process_lock
from kbqa.knowledge.naming import normalize_relative_path, validate_kb_name
from kbqa.settings import Settings
from kbqa.store.registry import available_types, store_class

log = logging.getLogger(__name__)

READY, ERROR = "ready", "error"  # knowledge_file.status; PENDING: known (e.g. moved from Chatchat), not indexed yet

ProgressFn = Callable[[dict[str, Any]], None]


@dataclass(slots=True)
class KBInfo:
    name: str
    info: str
    vs_type: str
    embed_model: str
    embed_dim: int
    file_count: int
    chunk_count: int
    created_at: datetime


@dataclass(slots=True)
class FileInfo:
    path: str
    ext: str
    size: int
    mtime: float
    sha256: str
    loader: str
    splitter: str
    chunk_size: int
    chunk_overlap: int
    zh_title_enhance: bool
    custom_docs: bool
    chunk_count: int
    version: int
    status: str
    error: str
    in_folder: bool
    created_at: datetime
    updated_at: datetime
    failed_at: datetime | None = None  # when the recorded error happened (status error)


@dataclass(slots=True)
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    # Paths in ``failed`` that failed the same way before and are unchanged: not a new failure.
    failed_before: list[str] = field(default_factory=list)
    # Custom docs not indexed, with the reason (their file is not in the content folder). Apart from `failed`:
    # Chatchat 0.2 clients count failed_files, and Chatchat skipped these without a word.
    skipped_docs: dict[str, str] = field(default_factory=dict)
    chunks: int = 0
    embedded: int = 0
    seconds: float = 0.0
    cancelled: bool = False

    @property
    def new_failures(self) -> dict[str, str]:
        before = set(self.failed_before)
        return {path: reason for path, reason in self.failed.items() if path not in before}


@dataclass(slots=True)
class SearchHit:
    chunk_id: int
    kb: str
    path: str
    ordinal: int
    text: str
    metadata: dict[str, Any]
    cosine: float
    # The score the hits were ordered by (cosine, fused rank score or reranker score).
    rank_score: float = 0.0

    @property
    def relevance(self) -> float:
        """In [0, 1], higher is better."""
        return float(min(1.0, max(0.0, self.cosine)))

    @property
    def distance(self) -> float:
        """Chatchat-compatible score: squared L2 distance of unit vectors, 2 - 2*cos, in [0, 4]; lower is better."""
        return float(max(0.0, 2.0 - 2.0 * self.cosine))


class KnowledgeBaseService:
    def __init__(self, settings: Settings, db: Database | None = None, embedders: EmbedderPool | None = None) -> None:
        self.settings = settings
        self.kb_root = settings.kb_root
        self.db = db or Database(settings.database_url)
        self.embedders = embedders or EmbedderPool(settings.embedding)
        self.indexes = IndexCache(self.db, settings.retrieval.keywords_in_memory)
        self._locks: dict[str, threading.RLock] = {}
        self._writing: dict[str, int] = {}
        self._locks_guard = threading.Lock()

    # --- setup --------------------------------------------------------------------------------------------------
    def create_tables(self) -> ImportReport | None:
        """Check the database's schema before anything is written, migrate a Langchain-Chatchat 0.2 database, then
        create missing tables. Returns the migration's report when one ran now. A foreign or newer database raises
        :class:`~kbqa.db.schema_version.DatabaseSchemaError` and is left unchanged."""
        self.kb_root.mkdir(parents=True, exist_ok=True)
        # create_all checks then creates: two processes starting together would race on SQLite.
        with process_lock(self.kb_root / ".locks" / "schema.lock"):
            report = None
            if self.db.inspect().kind is schema_version.Kind.CHATCHAT:
                report = chatchat_import.migrate(
                    self.db.url, self._kbqa_model_for, available_types(), self.settings.kb.default_vs_type
                )
                if report is not None:
                    report.old_indexes = sum(len(self.folder(kb).chatchat_vector_stores()) for kb in report.kbs)
            self.db.create_tables()
        # Before the staging rows go: an import's staging KB still there is what says its commit never happened.
        backup.recover_imports(self.kb_root, self.db)
        self._drop_stale_staging()
        return report

    def _kbqa_model_for(self, chatchat_model: str) -> tuple[str, int]:
        """A migrated KB keeps its embedding model when kbqa knows that name, else gets the configured default."""
        emb = self.settings.embedding
        model = chatchat_model if chatchat_model and chatchat_model in {emb.model, *emb.models} else emb.model
        return model, self.embedders.get(model).dim

    def _drop_stale_staging(self) -> None:
        """Drop the staging rows of recreates that were killed: those whose KB no writer holds now."""
        with self.db.read() as s:
            staged = repo.staging_names(s)
        for staging in staged:
            name = staging[len(repo.STAGING_PREFIX) :]
            with process_lock(self.kb_root / ".locks" / f"{name}.lock", blocking=False) as free:
                if free:
                    log.warning("dropping the rows of an unfinished recreate of %s", name)
                    self._drop_staging(staging)

    def close(self) -> None:
        self.db.dispose()

    def folder(self, name: str) -> KBFolder:
        return KBFolder.of(self.kb_root, name)

    def _index_folder(self, name: str, embed_model: str) -> Path:
        return self.folder(name).vector_store(embed_model)

    @contextmanager
    def _writer(self, name: str) -> Iterator[None]:
        """Serialise writers of one KB; while one runs, this process's readers keep the published index."""
        with self._locks_guard:
            lock = self._locks.setdefault(name, threading.RLock())
        with lock:
            with self._locks_guard:
                depth = self._writing.get(name, 0)
                self._writing[name] = depth + 1
            try:
                if depth:
                    yield
                else:
                    # Another process (init_database.py beside a server) must not interleave its commits and
                    # index saves with ours: hold an OS lock for the whole operation.
                    with process_lock(self.kb_root / ".locks" / f"{name}.lock"):
                        yield
            finally:
                with self._locks_guard:
                    self._writing[name] -= 1
                    if not self._writing[name]:
                        del self._writing[name]

    def write_lock(self, name: str) -> contextlib.AbstractContextManager[None]:
        """The KB's writer lock (this process's threads and other processes), for operations built outside this
        class on its rows and files (backup and restore)."""
        return self._writer(name)

    def drop_staging(self, staging: str) -> None:
        self._drop_staging(staging)

    def default_split(self) -> SplitConfig:
        kb = self.settings.kb
        return SplitConfig(
            kb.chunk_size,
            kb.chunk_overlap,
            kb.text_splitter,
            kb.zh_title_enhance,
            kb.min_chunk_chars,
            kb.table_header_repeat,
        )

    # --- knowledge bases ----------------------------------------------------------------------------------------
    def list_kbs(self) -> list[KBInfo]:
        with self.db.read() as s:
            return [self._kb_info(s, kb) for kb in repo.list_kbs(s)]

    def get_kb(self, name: str) -> KBInfo:
        name = validate_kb_name(name)
        with self.db.read() as s:
            kb = repo.get_kb(s, name)
            if kb is None:
                raise KBNotFound(f"knowledge base {name} not found")
            return self._kb_info(s, kb)

    def exists(self, name: str) -> bool:
        try:
            name = validate_kb_name(name)
        except InvalidName:
            return False
        with self.db.read() as s:
            return repo.get_kb(s, name) is not None

    @staticmethod
    def _kb_info(s: Any, kb: Any) -> KBInfo:
        files, chunks = repo.kb_counts(s, kb.id)
        return KBInfo(kb.name, kb.info, kb.vs_type, kb.embed_model, kb.embed_dim, files, chunks, kb.created_at)

    def create_kb(
        self, name: str, info: str | None = None, vs_type: str | None = None, embed_model: str | None = None
    ) -> KBInfo:
        name = validate_kb_name(name)
        vs_type = vs_type or self.settings.kb.default_vs_type
        store_class(vs_type)  # unknown backends fail before anything is written
        model = embed_model or self.settings.embedding.model
        embedder = self.embedders.get(model)
        folder = self.folder(name)
        with self._writer(name):
            with self.db.session() as s:
                if repo.get_kb(s, name) is not None:
                    raise KBExists(f"knowledge base {name} already exists")
                kb_info = info if info is not None else self.settings.kb.kb_info.get(name, f"关于{name}的知识库")
                repo.add_kb(s, name=name, info=kb_info, vs_type=vs_type, embed_model=model, embed_dim=embedder.dim)
            folder.ensure()
            state = self.indexes.get(name, self._index_folder)
            self.indexes.save(state)
        return self.get_kb(name)

    def update_info(self, name: str, info: str) -> KBInfo:
        name = validate_kb_name(name)
        with self._writer(name), self.db.session() as s:
            kb = repo.get_kb(s, name)
            if kb is None:
                raise KBNotFound(f"knowledge base {name} not found")
            kb.info = info
        return self.get_kb(name)

    def delete_kb(self, name: str) -> None:
        name = validate_kb_name(name)
        folder = self.folder(name)
        with self._writer(name):
            with self.db.session() as s:
                kb = repo.get_kb(s, name)
                if kb is None:
                    raise KBNotFound(f"knowledge base {name} not found")
                fulltext.remove_kb(s, kb.id)
                s.delete(kb)
                repo.drop_staging(s, repo.STAGING_PREFIX + name)
            self.indexes.drop(name)
            folder.remove_all()

    # --- files --------------------------------------------------------------------------------------------------
    def list_files(self, name: str) -> list[FileInfo]:
        name = validate_kb_name(name)
        folder = self.folder(name)
        with self.db.read() as s:
            kb = self._require(s, name)
            files = repo.list_files(s, kb.id)
        return [self._file_info(f, folder) for f in files]

    def file_names(self, name: str) -> list[str]:
        return [f.path for f in self.list_files(name)]

    def _require_file(self, s: Any, name: str, rel_path: str) -> KnowledgeFile:
        rel = normalize_relative_path(rel_path)
        f = repo.get_file(s, self._require(s, name).id, rel)
        if f is None:
            raise FileNotInKB(f"file {rel} is not in knowledge base {name}")
        return f

    def get_file(self, name: str, rel_path: str) -> FileInfo:
        name = validate_kb_name(name)
        with self.db.read() as s:
            f = self._require_file(s, name, rel_path)
        return self._file_info(f, self.folder(name))

    def file_chunks(self, name: str, rel_path: str) -> list[Document]:
        name = validate_kb_name(name)
        with self.db.read() as s:
            f = self._require_file(s, name, rel_path)
            return [
                Document(c.text, {**c.meta, "id": c.id, "ordinal": c.ordinal}) for c in repo.chunks_of_file(s, f.id)
            ]

    @staticmethod
    def _file_info(f: KnowledgeFile, folder: KBFolder) -> FileInfo:
        try:
            in_folder = folder.exists(f.path)
        except KBQAError:
            in_folder = False
        return FileInfo(
            f.path,
            f.ext,
            f.size,
            f.mtime,
            f.sha256,
            f.loader,
            f.splitter,
            f.chunk_size,
            f.chunk_overlap,
            f.zh_title_enhance,
            f.custom_docs,
            f.chunk_count,
            f.version,
            f.status,
            f.error,
            in_folder,
            f.created_at,
            f.updated_at,
            f.updated_at if f.status == ERROR else None,
        )

    def save_upload(self, name: str, rel_path: str, source: BinaryIO, *, override: bool = False) -> Path:
        """Store one uploaded file under the KB's content folder (not yet ingested)."""
        name = validate_kb_name(name)
        rel = normalize_relative_path(rel_path)
        with self.db.read() as s:
            self._require(s, name)
        max_bytes = int(self.settings.kb.max_file_mb * (1 << 20))
        path, _ = self.folder(name).save_stream(rel, source, override=override, max_bytes=max_bytes)
        return path

    def ingest(
        self,
        name: str,
        paths: Iterable[str] | None = None,
        *,
        split: SplitConfig | None = None,
        force: bool = False,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> IngestReport:
        """Bring the named files (default: everything under content/) into the index.

        A file whose sha256 and split settings are unchanged is skipped without being parsed; a changed file
        replaces exactly its own chunks; chunk texts already embedded in this KB are not embedded again.
        """
        name = validate_kb_name(name)
        cfg = split or self.default_split()
        started = time.perf_counter()
        with self._writer(name):
            state = self.indexes.get(name, self._index_folder, writer_active=False)
            report = self._ingest_into(state, self.folder(name), paths, cfg, force, progress, cancel)
            self.indexes.save(state)
        report.seconds = time.perf_counter() - started
        return report

    def _ingest_into(
        self,
        state: IndexState,
        folder: KBFolder,
        paths: Iterable[str] | None,
        cfg: SplitConfig,
        force: bool,
        progress: ProgressFn | None,
        cancel: threading.Event | None,
    ) -> IngestReport:
        """Index files of ``folder`` into the KB of ``state`` (the KB itself, or a recreate's staging KB)."""
        report = IngestReport()
        targets = self._targets(folder, paths, report)
        with self.db.read() as s:
            existing = repo.files_by_path(s, state.kb_id, [rel for rel, _ in targets])
        todo: list[tuple[str, Path, FileDigest | None, str | None]] = []
        for rel, path in targets:
            old = existing.get(rel)
            unsupported = unsupported_reason(path)
            if unsupported is not None and old is not None and old.status == ERROR and old.error == unsupported:
                # Its type decides, not its content: trying again would fail the same way.
                report.failed[rel] = unsupported
                report.failed_before.append(rel)
                continue
            try:
                if unsupported is not None:  # recorded without reading it (it may be a large video)
                    st = path.stat()
                    digest = FileDigest("", st.st_size, st.st_mtime)
                else:
                    digest = digest_file(path)
            except OSError as exc:
                todo.append((rel, path, None, f"{rel}: cannot read ({exc.strerror})"))
                continue
            if not force and old is not None and _unchanged(old, digest.sha256, cfg):
                report.skipped.append(rel)
                continue
            todo.append((rel, path, digest, None))
        max_bytes = int(self.settings.kb.max_file_mb * (1 << 20))
        jobs = (
            (
                lambda rel=rel, path=path, digest=digest, error=error: (
                    PreparedFile(rel, None, error=error)
                    if error is not None
                    else prepare_file(rel, path, cfg, max_bytes, digest, self.settings.ocr)
                )
            )
            for rel, path, digest, error in todo
        )
        total = len(todo)
        done = 0
        group: list[PreparedFile] = []
        group_chunks = 0
        chunk_budget = self.settings.embedding.batch_size * 8
        for prepared in prepare_many(jobs, self.settings.kb.parse_workers):
            group.append(prepared)
            group_chunks += len(prepared.chunks)
            if len(group) >= self.settings.kb.commit_every or group_chunks >= chunk_budget:
                done = self._commit_group(state, group, cfg, existing, report, progress, done, total)
                group, group_chunks = [], 0
                if cancel is not None and cancel.is_set():
                    report.cancelled = True
                    break
        if group and not report.cancelled:
            self._commit_group(state, group, cfg, existing, report, progress, done, total)
        return report

    def add_documents(
        self,
        name: str,
        rel_path: str,
        docs: Sequence[Document],
        *,
        split: SplitConfig | None = None,
    ) -> IngestReport:
        """Index caller-supplied documents under a file name (Chatchat's custom ``docs``); they are not re-split.

        As in Chatchat 0.2, the file must be in the content folder (:class:`FileNotInKB` otherwise): documents under
        a name with no file would be listed and searched, yet no file could be deleted to remove them.
        """
        name = validate_kb_name(name)
        rel = normalize_relative_path(rel_path)
        cfg = split or self.default_split()
        chunks = [Document(d.text, {**d.metadata, "source": rel}) for d in docs if d.text.strip()]
        prepared = PreparedFile(rel, None, loader="CustomDocs", chunks=chunks, custom=True)
        prepared.keywords = [index_text(c.text) for c in chunks]
        report = IngestReport()
        with self._writer(name):
            if not self.folder(name).exists(rel):
                raise FileNotInKB(
                    f"custom docs for {rel} were not indexed: the file is not in the knowledge base's content "
                    "folder (upload it in the same call, or first)"
                )
            state = self.indexes.get(name, self._index_folder, writer_active=False)
            with self.db.read() as s:
                existing = repo.files_by_path(s, state.kb_id, [rel])
            self._commit_group(state, [prepared], cfg, existing, report, None, 0, 1)
            self.indexes.save(state)
        return report

    def _targets(self, folder: KBFolder, paths: Iterable[str] | None, report: IngestReport) -> list[tuple[str, Path]]:
        targets: list[tuple[str, Path]] = []
        # Files of a type kbqa cannot index are targets too: their failure is recorded, so it is listed and
        # not retried while they are unchanged.
        if paths is None:
            for rel, found in folder.scan():
                if isinstance(found, KBQAError):
                    report.failed[rel] = found.message
                    continue
                targets.append((rel, found))
            return targets
        seen: set[str] = set()
        for raw in paths:
            try:
                rel = normalize_relative_path(raw)
                path = folder.file_path(rel)
                if not path.is_file():
                    raise FileNotInKB(f"file {rel} is not in the knowledge base's content folder")
            except KBQAError as exc:
                report.failed[str(raw)] = exc.message
                continue
            if rel not in seen:
                seen.add(rel)
                targets.append((rel, path))
        return targets

    def _commit_group(
        self,
        state: IndexState,
        group: list[PreparedFile],
        cfg: SplitConfig,
        existing: dict[str, KnowledgeFile],
        report: IngestReport,
        progress: ProgressFn | None,
        done: int,
        total: int,
    ) -> int:
        embedder = self.embedders.get(state.embed_model)
        ok = [f for f in group if f.error is None]
        with self.db.read() as s:
            known = repo.known_embeddings(s, state.kb_id, (text_sha256(c.text) for f in ok for c in f.chunks))
        report.embedded += embed_files(ok, embedder, self.settings.embedding.batch_size, known)
        removed: list[int] = []
        added_ids: list[np.ndarray] = []
        added_vecs: list[np.ndarray] = []
        added_keywords: list[tuple[int, str]] = []
        repeated: set[str] = set()
        generation = None
        with self.db.session() as s:
            for f in group:
                old = repo.get_file(s, state.kb_id, f.rel_path)
                if _same_failure(old, f):
                    repeated.add(f.rel_path)  # the row keeps the first failure's time
                    continue
                if old is not None:
                    removed.extend(repo.delete_chunks_of_file(s, old.id))
                row = old or KnowledgeFile(kb_id=state.kb_id, path=f.rel_path, version=0)
                row.ext = f.ext
                row.loader = f.loader
                row.splitter = cfg.splitter_name if not f.custom else "CustomDocs"
                row.chunk_size, row.chunk_overlap, row.zh_title_enhance = (
                    cfg.chunk_size,
                    cfg.chunk_overlap,
                    (cfg.zh_title_enhance),
                )
                row.custom_docs = f.custom
                row.version = (row.version or 0) + 1
                if f.digest is not None:
                    row.sha256, row.size, row.mtime = f.digest.sha256, f.digest.size, f.digest.mtime
                if f.error is not None:
                    row.status, row.error, row.chunk_count = ERROR, f.error, 0
                else:
                    row.status, row.error, row.chunk_count = READY, "", len(f.chunks)
                if old is None:
                    s.add(row)
                s.flush()
                if f.error is None and f.chunks:
                    assert f.vectors is not None
                    new = [
                        repo.NewChunk(i, c.text, text_sha256(c.text), c.metadata, f.vectors[i], f.keywords[i])
                        for i, c in enumerate(f.chunks)
                    ]
                    ids = repo.insert_chunks(s, state.kb_id, row.id, new)
                    added_ids.append(np.asarray(ids, dtype=np.int64))
                    added_keywords.extend(zip(ids, f.keywords, strict=True))
                    added_vecs.append(f.vectors)
            if len(repeated) < len(group):
                generation = repo.bump_generation(s, state.kb_id)
        if generation is not None:
            store = state.store.copy()
            store.remove(np.asarray(removed, dtype=np.int64))
            for ids, vecs in zip(added_ids, added_vecs, strict=True):
                store.add(ids, vecs)
            self.indexes.publish(state, store, generation, added_keywords, removed)
        for f in group:
            done += 1
            if f.error is not None:
                report.failed[f.rel_path] = f.error
                if f.rel_path in repeated:
                    report.failed_before.append(f.rel_path)
                status = "failed"
            else:
                known = f.rel_path in existing and existing[f.rel_path].status != PENDING
                (report.updated if known else report.added).append(f.rel_path)
                report.chunks += len(f.chunks)
                status = "done"
            if progress is not None:
                progress(
                    {
                        "file": f.rel_path,
                        "status": status,
                        "finished": done,
                        "total": total,
                        "chunks": len(f.chunks),
                        "error": f.error,
                    }
                )
        return done

    def update_chunks(self, name: str, docs: Mapping[int, Document | None]) -> None:
        """Chatchat's update_docs_by_id: each given chunk gets its new text and metadata and keeps its id; no content
        deletes it; chunks not named are untouched. Unknown ids fail before anything changes."""
        name = validate_kb_name(name)
        with self._writer(name):
            state = self.indexes.get(name, self._index_folder, writer_active=False)
            with self.db.read() as s:
                found = repo.chunks_of_kb(s, state.kb_id, list(docs))
            missing = sorted(set(docs) - set(found))
            if missing:
                raise ChunkNotFound(f"chunk ids not in knowledge base {name}: {', '.join(map(str, missing[:20]))}")
            replaced = {i: d for i, d in docs.items() if d is not None and d.text.strip()}
            deleted = [i for i in docs if i not in replaced]
            ids = list(replaced)
            texts = [replaced[i].text for i in ids]
            vectors = self.embedders.get(state.embed_model).embed_documents(texts) if texts else None
            keywords = [index_text(t) for t in texts]
            with self.db.session() as s:
                for n, chunk_id in enumerate(ids):
                    assert vectors is not None
                    meta = {**found[chunk_id].meta, **replaced[chunk_id].metadata}
                    meta = {k: v for k, v in meta.items() if k not in ("id", "ordinal")}
                    repo.rewrite_chunk(s, state.kb_id, chunk_id, texts[n], text_sha256(texts[n]), meta, vectors[n])
                fulltext.remove(s, state.kb_id, ids)
                fulltext.add(s, state.kb_id, zip(ids, keywords, strict=True))
                repo.delete_chunks(s, state.kb_id, deleted)
                repo.mark_edited(s, {found[i].file_id for i in docs})
                generation = repo.bump_generation(s, state.kb_id)
            store = state.store.copy()
            store.remove(np.asarray(list(docs), dtype=np.int64))
            if vectors is not None:
                store.add(np.asarray(ids, dtype=np.int64), vectors)
            self.indexes.publish(state, store, generation, list(zip(ids, keywords, strict=True)), list(docs))
            self.indexes.save(state)

    def delete_files(self, name: str, paths: Iterable[str], *, delete_content: bool = False) -> dict[str, str]:
        """Remove files' chunks and rows (and optionally the files). Returns {path: reason} for what failed."""
        name = validate_kb_name(name)
        folder = self.folder(name)
        failed: dict[str, str] = {}
        with self._writer(name):
            state = self.indexes.get(name, self._index_folder, writer_active=False)
            removed: list[int] = []
            deleted: list[str] = []
            with self.db.session() as s:
                for raw in paths:
                    try:
                        rel = normalize_relative_path(raw)
                        kept = _kept_on_disk(folder, rel) if delete_content else None
                    except KBQAError as exc:
                        failed[str(raw)] = exc.message
                        continue
                    if kept is not None:
                        failed[rel] = kept
                        continue
                    row = repo.get_file(s, state.kb_id, rel)
                    if row is None:
                        if not (delete_content and folder.exists(rel)):
                            failed[rel] = f"file {rel} is not in knowledge base {name}"
                            continue
                    else:
                        removed.extend(repo.delete_file(s, row))
                    deleted.append(rel)
                generation = repo.bump_generation(s, state.kb_id)
            store = state.store.copy()
            store.remove(np.asarray(removed, dtype=np.int64))
            self.indexes.publish(state, store, generation, removed_ids=removed)
            self.indexes.save(state)
            if delete_content:
                for rel in deleted:
                    folder.delete_file(rel)
        return failed

    def rebuild_index(self, name: str) -> int:
        """Rebuild the vector index from the embeddings stored in the DB (no model run). Returns the vector count."""
        name = validate_kb_name(name)
        with self._writer(name):
            state = self.indexes.get(name, self._index_folder, writer_active=False)
            store = self.indexes.rebuild_store(state.kb_id, state.vs_type, state.dim)
            state.store = store
            state.keywords = self.indexes.build_keywords(state.kb_id)
            state.saved_generation = -1
            self.indexes.save(state)
            return store.count()

    def recreate(
        self,
        name: str,
        *,
        embed_model: str | None = None,
        vs_type: str | None = None,
        split: SplitConfig | None = None,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> IngestReport:
        """Chatchat's recreate_vector_store: re-ingest all of content/, optionally with another embedding model or
        vector store type. Rows of files no longer on disk are gone afterwards.

        The new rows are built beside the old ones, under a staging KB that no request can name, and swapped in by
        one commit at the end: until then searches see the old KB, and a failure, a cancel or a kill at any point
        leaves it exactly as it was (a killed run's staging rows are dropped at the next start, recreate or delete).
        """
        name = validate_kb_name(name)
        cfg = split or self.default_split()
        started = time.perf_counter()
        with self._writer(name):
            with self.db.read() as s:
                kb = self._require(s, name)
                model = embed_model or kb.embed_model
                vs = vs_type or kb.vs_type
            store_cls = store_class(vs)  # every value is checked before the first write
            embedder = self.embedders.get(model)
            folder = self.folder(name)
            staging = repo.STAGING_PREFIX + name
            with self.db.session() as s:
                repo.drop_staging(s, staging)
                staged = repo.add_kb(s, name=staging, info="", vs_type=vs, embed_model=model, embed_dim=embedder.dim)
                staged_id = staged.id
            try:
                store = store_cls.empty(embedder.dim)
                keywords = self.indexes.build_keywords(staged_id)  # empty, or None where keywords stay in SQL
                state = IndexState(staged_id, staging, vs, model, embedder.dim, folder.root, store, 0, 0, keywords)
                folder.ensure()
                report = self._ingest_into(state, folder, None, cfg, True, progress, cancel)
                if not report.cancelled:
                    with self.db.session() as s:
                        kb_id, generation = repo.swap_in_staging(s, name, staged_id)
            except BaseException:
                self._drop_staging(staging)
                raise
            if report.cancelled:  # before the swap: the KB stays as it was
                self._drop_staging(staging)
                report.seconds = time.perf_counter() - started
                return report
            # committed: the staged index is the KB's index now (its chunk ids are the rows that were moved)
            self.indexes.drop(name)
            folder.remove_indexes()  # indexes of the old rows, whatever their model, no longer apply
            state.kb_id, state.name, state.folder = kb_id, name, self._index_folder(name, model)
            state.generation, state.saved_generation = generation, -1
            self.indexes.install(state)
            self.indexes.save(state)
        report.seconds = time.perf_counter() - started
        return report

    def _drop_staging(self, staging: str) -> None:
        try:
            with self.db.session() as s:
                repo.drop_staging(s, staging)
        except Exception:  # the original error matters more; the next recreate drops these rows
            log.exception("could not drop the staging rows of %s", staging)

    def prune_db(self, name: str) -> list[str]:
        """Forget files whose content is gone from the folder (Chatchat's --prune-db)."""
        gone = [f.path for f in self.list_files(name) if not f.in_folder]
        if gone:
            self.delete_files(name, gone)
        return gone

    def prunable_files(self, name: str) -> list[str]:
        """What --prune-folder deletes: files under content/ the DB does not know, of a type kbqa indexes. A file
        kbqa cannot index (an image a note links to) is never a candidate: it cannot be in the DB."""
        known = set(self.file_names(name))
        return [
            rel
            for rel, found in self.folder(name).scan()
            if rel not in known and not isinstance(found, KBQAError) and unsupported_reason(found) is None
        ]

    def prune_folder(self, name: str, paths: Iterable[str] | None = None) -> list[str]:
        """Delete content files the DB does not know (Chatchat's --prune-folder): ``paths`` (as listed by
        :meth:`prunable_files`, checked again here) or every candidate."""
        candidates = set(self.prunable_files(name))
        folder = self.folder(name)
        removed = []
        for rel in sorted(candidates if paths is None else candidates.intersection(paths)):
            if folder.delete_file(rel):
                removed.append(rel)
        return removed

    def files_not_in_db(self, name: str) -> list[str]:
        known = set(self.file_names(name))
        return [rel for rel, found in self.folder(name).scan() if rel not in known and not isinstance(found, KBQAError)]

    def files_to_index(self, name: str) -> list[str]:
        """init_database.py -i: files the DB does not know, and those it knows but never indexed (pending)."""
        pending = [f.path for f in self.list_files(name) if f.status == PENDING and f.in_folder]
        return sorted({*self.files_not_in_db(name), *pending})

    def prune_old_vector_stores(self, name: str) -> list[Path]:
        """Remove Langchain-Chatchat's FAISS folders of a KB (kbqa never reads them); returns what was removed."""
        return self.folder(name).remove_chatchat_vector_stores()

    # --- search -------------------------------------------------------------------------------------------------
    def search(
        self,
        name: str,
        query: str,
        top_k: int | None = None,
        score_threshold: float | None = None,
    ) -> list[SearchHit]:
        """Dense search. ``score_threshold`` is Chatchat's distance (keep ``2 - 2*cos <= threshold``)."""
        name = validate_kb_name(name)
        k = top_k or self.settings.kb.top_k
        state = self.indexes.get(name, self._index_folder, writer_active=name in self._writing)
        if not query.strip() or state.store.count() == 0:
            return []
        vector = self.embedders.get(state.embed_model).embed_query(query)
        return self.search_vector(state, vector, k, score_threshold)

    def index_state(self, name: str) -> IndexState:
        """The published index of a KB (opened, or repaired, on first use)."""
        name = validate_kb_name(name)
        return self.indexes.get(name, self._index_folder, writer_active=name in self._writing)

    def search_vector(
        self, state: IndexState, vector: np.ndarray, k: int, score_threshold: float | None = None
    ) -> list[SearchHit]:
        store = state.store  # one reference: the snapshot this search uses
        scores, ids = store.search(vector.reshape(1, -1), k)
        pairs = [(int(i), float(sc)) for i, sc in zip(ids[0], scores[0], strict=True) if i >= 0]
        with self.db.read() as s:
            rows = repo.chunks_by_ids(s, [i for i, _ in pairs])
        hits: list[SearchHit] = []
        query = np.asarray(vector, dtype=np.float32).ravel()
        for chunk_id, cos in pairs:
            found = rows.get(chunk_id)
            if found is None:  # deleted by a newer commit than this snapshot
                continue
            stored = np.frombuffer(found.embedding, dtype="<f4")
            # the index holds int8 codes; the score and threshold use the exact stored vector
            exact = float(stored @ query) if len(stored) == len(query) else cos
            hit = SearchHit(chunk_id, state.name, found.path, found.ordinal, found.text, dict(found.meta), exact)
            if score_threshold is not None and hit.distance > score_threshold:
                continue
            hits.append(hit)
        hits.sort(key=lambda h: -h.cosine)  # exact order among the candidates the codes found
        return hits

    def _require(self, s: Any, name: str) -> Any:
        kb = repo.get_kb(s, name)
        if kb is None:
            raise KBNotFound(f"knowledge base {name} not found")
        return kb


def unsupported_reason(path: Path) -> str | None:
    """Why kbqa cannot index this file's type, or None when it can."""
    try:
        loaders.loader_name(path)
    except KBQAError as exc:
        return exc.message
    return None


def _kept_on_disk(folder: KBFolder, rel: str) -> str | None:
    """Why a file must not be deleted from disk; None when it may be. kbqa deletes only what it can index."""
    path = folder.file_path(rel)
    if not path.is_file():
        return None
    reason = unsupported_reason(path)
    if reason is None:
        return None
    return (
        f"{rel} is not deleted: kbqa cannot index this type of file ({reason}), so it may belong to a document "
        "(an image a note links to); remove it from the folder yourself"
    )


def _same_failure(old: KnowledgeFile | None, f: PreparedFile) -> bool:
    """The file failed before with the same reason and has not changed since."""
    if old is None or f.error is None or old.status != ERROR or old.error != f.error:
        return False
    return f.digest is None or (old.sha256 == f.digest.sha256 and old.size == f.digest.size)


def _unchanged(row: KnowledgeFile, sha256: str, cfg: SplitConfig) -> bool:
    return (
        row.status == READY
        and not row.custom_docs
        and row.sha256 == sha256
        and row.chunk_size == cfg.chunk_size
        and row.chunk_overlap == cfg.chunk_overlap
        and row.zh_title_enhance == cfg.zh_title_enhance
        and row.splitter == cfg.splitter_name
    )
