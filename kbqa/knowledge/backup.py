"""Backup and restore of one knowledge base as a single tar archive.

An archive holds, in this order: ``kb.json`` (the KB's settings and its file rows), ``chunks.jsonl`` (one chunk a
line: file, ordinal, text, metadata, keyword tokens), ``embeddings.f32`` (the chunks' vectors, little-endian float32,
one row per line of chunks.jsonl, with the model's name and dimension in kb.json), ``content/...`` (the files) and
last ``manifest.json`` (sha256 and size of every other member). Taken under the KB's write lock, so the rows, the
vectors and the files agree even while uploads wait.

Import reads the archive once to check it (every member a plain file at a safe path, every checksum and size equal to
the manifest's, nothing missing or extra), and only then writes: the rows go under a staging KB no request can name,
the files into a hidden staging folder, and one commit turns the staging KB into the real one (a kill before it leaves
no KB; the leftovers are removed at the next start by :func:`recover_imports`). Embeddings from a model this server
does not run are refused unless re-embedding is asked for.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select, update

from kbqa import __version__
from kbqa.atomic_file import atomic_writer
from kbqa.db import fulltext
from kbqa.db import repository as repo
from kbqa.db.engine import Database
from kbqa.db.models import Chunk, KnowledgeBase, KnowledgeFile
from kbqa.errors import BackupModelMismatch, InvalidBackup, InvalidPath, KBExists, KBNotFound, KBQAError
from kbqa.ingest.keywords import index_text
from kbqa.ingest.pipeline import text_sha256
from kbqa.knowledge.index_cache import IndexState
from kbqa.knowledge.locking import process_lock
from kbqa.knowledge.naming import normalize_relative_path, resolve_inside, validate_kb_name
from kbqa.store.registry import store_class

if TYPE_CHECKING:
    from kbqa.knowledge.service import KnowledgeBaseService

FORMAT = "kbqa-kb-backup"
VERSION = 1
MANIFEST, KB_JSON, CHUNKS, EMBEDDINGS, CONTENT = (
    "manifest.json",
    "kb.json",
    "chunks.jsonl",
    "embeddings.f32",
    "content/",
)
IMPORT_PREFIX = ".import."  # <kb_root>/.import.<kb>: an import's files before its commit (never a valid KB name)
_BLOCK = 1 << 20
_SMALL_MEMBER_MAX = 256 << 20  # kb.json and manifest.json are read into memory: no bigger than this
_SPOOL = 64 << 20

Progress = Callable[[dict[str, Any]], None]


@dataclass(slots=True)
class BackupReport:
    kb: str
    archive: str
    files: int = 0  # content files
    chunks: int = 0
    bytes: int = 0  # archive size
    seconds: float = 0.0
    reembedded: int = 0
    embed_model: str = ""
    cancelled: bool = False
    skipped: dict[str, str] = field(default_factory=dict)  # content files left out of an export, with the reason

    def summary(self) -> dict[str, Any]:
        return {
            "knowledge_base_name": self.kb,
            "archive": self.archive,
            "files": self.files,
            "chunks": self.chunks,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "reembedded": self.reembedded,
            "embed_model": self.embed_model,
            "cancelled": self.cancelled,
            "skipped": self.skipped,
        }


# --- what the archive's JSON members hold (bounded: an archive is untrusted input) --------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KBRecord(_Strict):
    name: str = Field(max_length=255)
    info: str = Field("", max_length=100_000)
    vs_type: str = Field(max_length=32)
    embed_model: str = Field(max_length=255)
    embed_dim: int = Field(gt=0, le=65_536)
    created_at: datetime


class FileRecord(_Strict):
    path: str = Field(max_length=4096)
    ext: str = Field("", max_length=16)
    size: int = Field(0, ge=0)
    mtime: float = 0.0
    sha256: str = Field("", max_length=64)
    loader: str = Field("", max_length=64)
    splitter: str = Field("", max_length=64)
    chunk_size: int = Field(0, ge=0)
    chunk_overlap: int = Field(0, ge=0)
    zh_title_enhance: bool = False
    custom_docs: bool = False
    chunk_count: int = Field(0, ge=0)
    version: int = Field(1, ge=0)
    status: str = Field("ready", max_length=16)
    error: str = Field("", max_length=100_000)
    created_at: datetime
    updated_at: datetime


class KBDocument(_Strict):
    kb: KBRecord
    files: list[FileRecord]
    # What the vector store chose from the data (the int8 scale of FAISS): the same codes, the same answers.
    index_params: dict[str, float] = Field(default_factory=dict, max_length=16)


class ChunkRecord(_Strict):
    file: str = Field(max_length=4096)
    ordinal: int = Field(ge=0)
    text: str = Field(max_length=10_000_000)
    meta: dict[str, Any] = Field(default_factory=dict)
    keywords: str | None = None


class MemberSum(_Strict):
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class Manifest(_Strict):
    format: Literal["kbqa-kb-backup"]
    version: int = Field(ge=1, le=VERSION)
    kbqa_version: str = Field(max_length=64)
    exported_at: datetime
    kb: str = Field(max_length=255)
    embed_model: str = Field(max_length=255)
    embed_dim: int = Field(gt=0, le=65_536)
    chunks: int = Field(ge=0)
    members: dict[str, MemberSum]


# --- export --------------------------------------------------------------------------------------------------------
class _Cancelled(Exception):
    """Raised where a cancel is seen, so that the archive writer or the import's cleanup runs."""


class _HashingReader:
    """Reads through to ``raw`` and hashes what passes: a member's checksum costs no second read."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.sha.update(data)
        return data


def _add(tar: tarfile.TarFile, name: str, source: IO[bytes], size: int, mtime: float, sums: dict[str, Any]) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, int(mtime), 0o644
    reader = _HashingReader(source)
    tar.addfile(info, reader)  # type: ignore[arg-type]
    sums[name] = {"sha256": reader.sha.hexdigest(), "size": size}


def _add_spooled(tar: tarfile.TarFile, name: str, spool: IO[bytes], sums: dict[str, Any]) -> None:
    size = spool.tell()
    spool.seek(0)
    _add(tar, name, spool, size, time.time(), sums)


def _write_mode(target: Path) -> Literal["w|", "w|gz"]:
    return "w|gz" if target.name.endswith((".gz", ".tgz")) else "w|"


def export_kb(
    service: KnowledgeBaseService,
    name: str,
    target: Path,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> BackupReport:
    """Write KB ``name`` to ``target`` (a .tar, or .tar.gz / .tgz compressed), atomically: a failed or cancelled
    export leaves no file behind (a cancelled one returns a report saying so)."""
    name = validate_kb_name(name)
    started = time.perf_counter()
    report = BackupReport(name, str(target))
    try:
        _export(service, name, target, report, progress, cancel)
    except _Cancelled:
        report.cancelled = True
    report.seconds = time.perf_counter() - started
    return report


def _export(
    service: KnowledgeBaseService,
    name: str,
    target: Path,
    report: BackupReport,
    progress: Progress | None,
    cancel: threading.Event | None,
) -> None:
    folder = service.folder(name)
    with service.write_lock(name), service.db.read() as s:
        kb = s.scalar(select(KnowledgeBase).where(KnowledgeBase.name == name))
        if kb is None:
            raise KBNotFound(f"knowledge base {name} not found")
        files = repo.list_files(s, kb.id)
        paths = {f.id: f.path for f in files}
        index_params = service.index_state(name).store.params()
        doc = KBDocument(
            kb=KBRecord(
                name=kb.name,
                info=kb.info,
                vs_type=kb.vs_type,
                embed_model=kb.embed_model,
                embed_dim=kb.embed_dim,
                created_at=kb.created_at,
            ),
            files=[FileRecord.model_validate(f, from_attributes=True) for f in files],
            index_params=index_params,
        )
        keywords = dict(fulltext.rows(s, kb.id))
        report.embed_model = kb.embed_model
        candidates = [(rel, found) for rel, found in folder.scan()]
        sums: dict[str, Any] = {}
        with atomic_writer(target) as out, tarfile.open(fileobj=out, mode=_write_mode(target)) as tar:
            raw = doc.model_dump_json().encode()
            _add(tar, KB_JSON, io.BytesIO(raw), len(raw), time.time(), sums)
            with (
                tempfile.SpooledTemporaryFile(_SPOOL) as lines,
                tempfile.SpooledTemporaryFile(_SPOOL) as vectors,
            ):
                stmt = (
                    select(Chunk.id, Chunk.file_id, Chunk.ordinal, Chunk.text, Chunk.meta, Chunk.embedding)
                    .where(Chunk.kb_id == kb.id)
                    .order_by(Chunk.id)
                )
                for chunk_id, file_id, ordinal, text, meta, embedding in s.execute(stmt):
                    record = {
                        "file": paths[file_id],
                        "ordinal": ordinal,
                        "text": text,
                        "meta": meta or {},
                        "keywords": keywords.get(chunk_id),
                    }
                    lines.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")
                    vectors.write(embedding)
                    report.chunks += 1
                _add_spooled(tar, CHUNKS, lines, sums)
                _add_spooled(tar, EMBEDDINGS, vectors, sums)
            for i, (rel, found) in enumerate(candidates, start=1):
                if cancel is not None and cancel.is_set():
                    raise _Cancelled
                if isinstance(found, KBQAError):
                    report.skipped[rel] = found.message
                    continue
                with found.open("rb") as fh:
                    st = os.fstat(fh.fileno())
                    _add(tar, CONTENT + rel, fh, st.st_size, st.st_mtime, sums)
                report.files += 1
                if progress is not None:
                    progress({"file": rel, "status": "done", "finished": i, "total": len(candidates)})
            manifest = Manifest(
                format=FORMAT,
                version=VERSION,
                kbqa_version=__version__,
                exported_at=datetime.now(UTC),
                kb=name,
                embed_model=kb.embed_model,
                embed_dim=kb.embed_dim,
                chunks=report.chunks,
                members=sums,
            )
            raw = manifest.model_dump_json(indent=1).encode()
            _add(tar, MANIFEST, io.BytesIO(raw), len(raw), time.time(), {})
    report.bytes = target.stat().st_size


# --- reading and checking an archive -------------------------------------------------------------------------------
def _member_name(member: tarfile.TarInfo) -> str:
    """The member's name if it is a plain file kbqa writes, at a safe path; InvalidBackup otherwise."""
    name = member.name
    if not member.isreg():
        kind = "link" if member.issym() or member.islnk() else "folder" if member.isdir() else "special file"
        raise InvalidBackup(f"archive member {name[:200]!r} is a {kind}; a kbqa archive holds plain files only")
    if name in (MANIFEST, KB_JSON, CHUNKS, EMBEDDINGS):
        return name
    if name.startswith(CONTENT):
        try:
            rel = normalize_relative_path(name[len(CONTENT) :])
        except InvalidPath as exc:
            raise InvalidBackup(f"archive member {name[:200]!r} is not a safe path: {exc.message}") from exc
        if CONTENT + rel == name:
            return name
    raise InvalidBackup(f"archive member {name[:200]!r} is not part of a kbqa knowledge-base archive")


def _open(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, mode="r|*")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InvalidBackup(f"{path.name} is not a readable tar archive: {exc}") from exc


@contextlib.contextmanager
def _members(path: Path) -> Iterator[Iterator[tuple[str, tarfile.TarInfo, IO[bytes]]]]:
    """(checked name, member, reader) of each member in archive order; read errors become InvalidBackup."""
    tar = _open(path)

    def walk() -> Iterator[tuple[str, tarfile.TarInfo, IO[bytes]]]:
        seen: set[str] = set()
        for member in tar:
            name = _member_name(member)
            if name in seen:
                raise InvalidBackup(f"archive member {name[:200]!r} appears twice")
            seen.add(name)
            reader = tar.extractfile(member)
            assert reader is not None  # a regular file
            yield name, member, reader

    try:
        yield walk()
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise InvalidBackup(f"{path.name} is truncated or damaged: {exc}") from exc
    finally:
        tar.close()


def _read_all(reader: IO[bytes], limit: int, name: str) -> bytes:
    data = reader.read(limit + 1)
    if len(data) > limit:
        raise InvalidBackup(f"{name} is larger than {limit >> 20} MiB")
    return data


@dataclass(slots=True)
class CheckedArchive:
    path: Path
    manifest: Manifest
    doc: KBDocument


def check_archive(path: Path) -> CheckedArchive:
    """Read the whole archive once, writing nothing: every member safe, every checksum and size as the manifest
    says, nothing missing or extra, the JSON members well-formed. Raises InvalidBackup."""
    sums: dict[str, MemberSum] = {}
    small: dict[str, bytes] = {}
    with _members(path) as members:
        for name, member, reader in members:
            sha, size = hashlib.sha256(), 0
            keep = name in (MANIFEST, KB_JSON)
            kept = bytearray()
            while block := reader.read(_BLOCK):
                sha.update(block)
                size += len(block)
                if keep:
                    if size > _SMALL_MEMBER_MAX:
                        raise InvalidBackup(f"{name} is larger than {_SMALL_MEMBER_MAX >> 20} MiB")
                    kept += block
            if size != member.size:
                raise InvalidBackup(f"archive member {name[:200]!r} is truncated")
            sums[name] = MemberSum(sha256=sha.hexdigest(), size=size)
            if keep:
                small[name] = bytes(kept)
    if MANIFEST not in small:
        raise InvalidBackup(f"{path.name} has no {MANIFEST}: not a kbqa knowledge-base archive, or truncated")
    try:
        manifest = Manifest.model_validate_json(small[MANIFEST])
    except ValidationError as exc:
        raise InvalidBackup(f"{MANIFEST} is not a kbqa {FORMAT} manifest: {_first_error(exc)}") from exc
    sums.pop(MANIFEST)
    missing = sorted(set(manifest.members) - set(sums))
    extra = sorted(set(sums) - set(manifest.members))
    if missing:
        raise InvalidBackup(f"archive members missing: {', '.join(m[:100] for m in missing[:5])}")
    if extra:
        raise InvalidBackup(f"archive members not in the manifest: {', '.join(m[:100] for m in extra[:5])}")
    for name, found in sums.items():
        if found != manifest.members[name]:
            raise InvalidBackup(f"checksum mismatch for {name[:200]!r}: the archive was altered or damaged")
    for required in (KB_JSON, CHUNKS, EMBEDDINGS):
        if required not in sums:
            raise InvalidBackup(f"archive has no {required}")
    try:
        doc = KBDocument.model_validate_json(small[KB_JSON])
    except ValidationError as exc:
        raise InvalidBackup(f"{KB_JSON} is malformed: {_first_error(exc)}") from exc
    expected = manifest.chunks * manifest.embed_dim * 4
    if sums[EMBEDDINGS].size != expected or doc.kb.embed_dim != manifest.embed_dim:
        raise InvalidBackup(f"{EMBEDDINGS} does not hold {manifest.chunks} vectors of dimension {manifest.embed_dim}")
    return CheckedArchive(path, manifest, doc)


def peek_name(path: Path) -> str:
    """The KB name an archive holds, from its first member, without checking the rest (for an early 409)."""
    with _members(path) as members:
        for name, _, reader in members:
            if name != KB_JSON:
                break
            try:
                return KBDocument.model_validate_json(_read_all(reader, _SMALL_MEMBER_MAX, name)).kb.name
            except ValidationError as exc:
                raise InvalidBackup(f"{KB_JSON} is malformed: {_first_error(exc)}") from exc
    raise InvalidBackup(f"{path.name} does not start with {KB_JSON}: not a kbqa knowledge-base archive")


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg')}"


# --- import --------------------------------------------------------------------------------------------------------
def import_kb(
    service: KnowledgeBaseService,
    archive: Path,
    *,
    new_name: str | None = None,
    overwrite: bool = False,
    reembed: bool = False,
    embed_model: str | None = None,
    vs_type: str | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> BackupReport:
    """Restore an archive as KB ``new_name`` (default: the name it was exported under).

    Refused, before anything is written: a damaged or unsafe archive (InvalidBackup), an existing KB unless
    ``overwrite`` (KBExists), embeddings of a model this server does not run unless ``reembed`` (BackupModelMismatch).
    With ``reembed`` the chunks are embedded again with ``embed_model`` (default: the archive's model when this server
    runs it, else ``embedding.model``). ``vs_type``: the vector store to build (default: the archive's)."""
    started = time.perf_counter()
    checked = check_archive(archive)
    source = checked.doc.kb
    target = validate_kb_name(new_name or source.name)
    report = BackupReport(target, str(archive))
    model, dim = _target_model(service, source, reembed, embed_model)
    report.embed_model = model
    vs = vs_type or source.vs_type
    store_cls = store_class(vs)
    file_paths = [f.path for f in checked.doc.files]
    for rel in file_paths:
        normalize_relative_path(rel)
    if len(set(file_paths)) != len(file_paths):
        raise InvalidBackup(f"{KB_JSON} lists a file twice")
    folder = service.folder(target)
    staging_dir = service.kb_root / (IMPORT_PREFIX + target)
    staging = repo.STAGING_PREFIX + target
    with service.write_lock(target):
        exists = service.exists(target)
        if exists and not overwrite:
            raise KBExists(f"knowledge base {target} already exists; import it under another name or overwrite it")
        if not exists and folder.content.is_dir() and any(folder.content.iterdir()):
            raise KBExists(
                f"the folder of {target} (<kb_root>/{target}/content) holds files of no knowledge base; move them "
                "away or import under another name"
            )
        with service.db.session() as s:
            repo.drop_staging(s, staging)
            staged_id = repo.add_kb(s, name=staging, info="", vs_type=vs, embed_model=model, embed_dim=dim).id
        try:
            _remove_dir(staging_dir)
            (staging_dir / "content").mkdir(parents=True)
            records, vectors = _unpack(checked, staging_dir / "content", report, progress, cancel)
            if report.cancelled:
                raise _Cancelled
            same_vectors = model == source.embed_model and dim == source.embed_dim
            if not same_vectors:
                vectors = _embed_again(service, model, records, report, progress, cancel)
                if report.cancelled:
                    raise _Cancelled
            ids = _insert_rows(service.db, staged_id, checked.doc, records, vectors)
            params = checked.doc.index_params if same_vectors and vs == source.vs_type else {}
            store = store_cls.empty_with(dim, params)
            store.add(np.asarray(ids, dtype=np.int64), vectors)
            with service.db.session() as s:  # the one commit that makes the KB appear (or replaces the old one)
                if exists:
                    kb_id, generation = repo.swap_in_staging(s, target, staged_id)
                else:
                    kb_id, generation = staged_id, 1
                s.execute(
                    update(KnowledgeBase)
                    .where(KnowledgeBase.id == kb_id)
                    .values(name=target, info=source.info, generation=generation, created_at=source.created_at)
                )
        except BaseException:
            _remove_dir(staging_dir)
            service.drop_staging(staging)
            if report.cancelled:
                report.seconds = time.perf_counter() - started
                return report
            raise
        # committed: move the files in, then publish the index
        _move_content_in(staging_dir, folder.root)
        service.indexes.drop(target)
        folder.remove_indexes()
        index = IndexState(
            kb_id=kb_id,
            name=target,
            vs_type=vs,
            embed_model=model,
            dim=dim,
            folder=folder.vector_store(model),
            store=store,
            generation=generation,
            saved_generation=-1,
            keywords=service.indexes.build_keywords(kb_id),
        )
        service.indexes.install(index)
        service.indexes.save(index)
    report.chunks = len(records)
    report.seconds = time.perf_counter() - started
    return report


def _target_model(
    service: KnowledgeBaseService, source: KBRecord, reembed: bool, embed_model: str | None
) -> tuple[str, int]:
    """(model, dimension) the imported KB will use. Without ``reembed`` that is the archive's, which this server
    must run with the same dimension."""
    pool = service.embedders
    if reembed:
        wanted = embed_model or (source.embed_model if pool.is_configured(source.embed_model) else None)
        model = pool.choose(wanted)
        return model, pool.get(model).dim
    if embed_model and embed_model != source.embed_model:
        raise BackupModelMismatch(
            f"the archive's embeddings come from {source.embed_model}; to use {embed_model} ask for re-embedding "
            "(--reembed, or reembed=true)"
        )
    hint = (
        f"import with re-embedding (`kbqa kb import FILE --reembed`, or reembed=true) to embed its chunks again "
        f"with {pool.choose(None)}, or add {source.embed_model} to embedding.models"
    )
    if not pool.is_configured(source.embed_model):
        raise BackupModelMismatch(
            f"the archive's embeddings come from {source.embed_model} (dimension {source.embed_dim}), which this "
            f"server does not run; {hint}"
        )
    dim = pool.get(source.embed_model).dim
    if dim != source.embed_dim:
        raise BackupModelMismatch(
            f"the archive's embeddings have dimension {source.embed_dim}, but {source.embed_model} here makes "
            f"vectors of dimension {dim}: another model under the same name; {hint}"
        )
    return source.embed_model, dim


def _unpack(
    checked: CheckedArchive,
    content: Path,
    report: BackupReport,
    progress: Progress | None,
    cancel: threading.Event | None,
) -> tuple[list[ChunkRecord], np.ndarray]:
    """Second read: parse the chunks and vectors, write the content files into the staging folder, checking each
    member against the manifest again (the file could have changed since the first read)."""
    manifest = checked.manifest
    dim = manifest.embed_dim
    records: list[ChunkRecord] = []
    vectors = np.zeros((0, dim), dtype=np.float32)
    known_files = {f.path for f in checked.doc.files}
    n_content = sum(1 for m in manifest.members if m.startswith(CONTENT))
    done = 0
    with _members(checked.path) as members:
        for name, _, reader in members:
            if cancel is not None and cancel.is_set():
                report.cancelled = True
                return records, vectors
            if name == CHUNKS:
                data = _checked_read(reader, manifest.members[name], name)
                try:
                    records = [ChunkRecord.model_validate_json(line) for line in data.splitlines() if line.strip()]
                except ValidationError as exc:
                    raise InvalidBackup(f"{CHUNKS} is malformed: {_first_error(exc)}") from exc
                if len(records) != manifest.chunks:
                    raise InvalidBackup(f"{CHUNKS} holds {len(records)} chunks, the manifest says {manifest.chunks}")
                unknown = {r.file for r in records} - known_files
                if unknown:
                    raise InvalidBackup(f"chunks of files not in {KB_JSON}: {', '.join(sorted(unknown)[:5])}")
            elif name == EMBEDDINGS:
                data = _checked_read(reader, manifest.members[name], name)
                vectors = np.frombuffer(data, dtype="<f4").reshape(manifest.chunks, dim).astype(np.float32)
                if not np.isfinite(vectors).all():
                    raise InvalidBackup(f"{EMBEDDINGS} holds values that are not finite numbers")
            elif name.startswith(CONTENT):
                rel = name[len(CONTENT) :]
                dest = resolve_inside(content, rel)
                dest.parent.mkdir(parents=True, exist_ok=True)
                sha = hashlib.sha256()
                with dest.open("xb") as out:
                    while block := reader.read(_BLOCK):
                        sha.update(block)
                        out.write(block)
                if sha.hexdigest() != manifest.members[name].sha256:
                    raise InvalidBackup(f"checksum mismatch for {name[:200]!r}: the archive changed while importing")
                done += 1
                report.files += 1
                if progress is not None:
                    progress({"file": rel, "status": "done", "finished": done, "total": n_content})
    return records, vectors


def _checked_read(reader: IO[bytes], expected: MemberSum, name: str) -> bytes:
    data = reader.read()
    if len(data) != expected.size or hashlib.sha256(data).hexdigest() != expected.sha256:
        raise InvalidBackup(f"checksum mismatch for {name!r}: the archive changed while importing")
    return data


def _embed_again(
    service: KnowledgeBaseService,
    model: str,
    records: list[ChunkRecord],
    report: BackupReport,
    progress: Progress | None,
    cancel: threading.Event | None,
) -> np.ndarray:
    embedder = service.embedders.get(model)
    batch = service.settings.embedding.batch_size * 4
    parts: list[np.ndarray] = []
    for start in range(0, len(records), batch):
        if cancel is not None and cancel.is_set():
            report.cancelled = True
            break
        texts = [r.text for r in records[start : start + batch]]
        parts.append(np.asarray(embedder.embed_documents(texts), dtype=np.float32))
        report.reembedded += len(texts)
        if progress is not None:
            progress({"stage": "embedding", "finished": report.reembedded, "total": len(records)})
    return np.concatenate(parts) if parts else np.zeros((0, embedder.dim), dtype=np.float32)


def _insert_rows(
    db: Database, staged_id: int, doc: KBDocument, records: list[ChunkRecord], vectors: np.ndarray
) -> list[int]:
    """File rows and chunks (with their keyword tokens) under the staging KB. Returns the chunk ids, in the order of
    ``records`` (= the rows of ``vectors``). Chunks are inserted in the archive's order, which is the original id
    order: ids keep their relative order, so hits with equal scores come in the same order as before the export."""
    counts: dict[str, int] = {}
    for r in records:
        counts[r.file] = counts.get(r.file, 0) + 1
    ids: list[int] = []
    with db.session() as s:
        file_ids: dict[str, int] = {}
        for f in doc.files:
            row = KnowledgeFile(kb_id=staged_id, **{**f.model_dump(), "chunk_count": counts.get(f.path, 0)})
            s.add(row)
            s.flush()
            file_ids[f.path] = row.id
        start = 0
        while start < len(records):
            end = start
            while end < len(records) and records[end].file == records[start].file:
                end += 1
            run = [
                repo.NewChunk(
                    r.ordinal,
                    r.text,
                    text_sha256(r.text),
                    r.meta,
                    vectors[start + i],
                    r.keywords if r.keywords is not None else index_text(r.text),
                )
                for i, r in enumerate(records[start:end])
            ]
            ids += repo.insert_chunks(s, staged_id, file_ids[records[start].file], run)
            start = end
    return ids


def _move_content_in(staging_dir: Path, kb_folder: Path) -> None:
    """Put the staged content folder in place of the KB's (an overwritten KB's old files go), then drop the
    staging folder. Each step is a rename, so :func:`recover_imports` can finish it after a kill."""
    kb_folder.mkdir(parents=True, exist_ok=True)
    content = kb_folder / "content"
    if (staging_dir / "content").is_dir():
        if content.exists():
            os.replace(content, staging_dir / "old-content")
        os.replace(staging_dir / "content", content)
    _remove_dir(staging_dir)


def _remove_dir(path: Path) -> None:
    if path.is_symlink():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def recover_imports(kb_root: Path, db: Database) -> list[str]:
    """At start, for each import a kill interrupted (a ``.import.<kb>`` folder no live writer holds): an import
    whose commit happened gets its files moved in, any other is forgotten. Run before the staging rows are dropped:
    a staging KB still there means the commit did not happen. Returns the KB names seen."""
    seen: list[str] = []
    if not kb_root.is_dir():
        return seen
    for staging_dir in sorted(kb_root.glob(IMPORT_PREFIX + "*")):
        name = staging_dir.name[len(IMPORT_PREFIX) :]
        with process_lock(kb_root / ".locks" / f"{name}.lock", blocking=False) as free:
            if not free:
                continue
            seen.append(name)
            with db.read() as s:
                committed = repo.get_kb(s, repo.STAGING_PREFIX + name) is None and repo.get_kb(s, name) is not None
            if committed and not (kb_root / name / "content").is_dir():
                _move_content_in(staging_dir, kb_root / name)
            else:
                _remove_dir(staging_dir)
    return seen
