"""File → chunks → vectors, batched across files.

Parsing and splitting run in a small thread pool ahead of the embedder (the embedder releases the GIL while it
computes), and chunk texts from many files share embedding batches, so the model stays busy: on a CPU the embedding
is the only real cost of an ingest.
"""

from __future__ import annotations

import hashlib
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kbqa.embeddings.base import Embedder
from kbqa.errors import EmptyDocument, FileTooLarge, KBQAError
from kbqa.ingest import loaders
from kbqa.ingest.document import Document
from kbqa.ingest.keywords import index_text
from kbqa.ingest.ocr.settings import OCRSettings
from kbqa.ingest.splitters import SplitConfig, split_documents
from kbqa.knowledge.content import FileDigest, digest_file

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PreparedFile:
    rel_path: str
    digest: FileDigest | None
    loader: str = ""
    chunks: list[Document] = field(default_factory=list)
    error: str | None = None
    custom: bool = False
    vectors: np.ndarray | None = None
    keywords: list[str] = field(default_factory=list)  # full-text index tokens per chunk

    @property
    def ext(self) -> str:
        return Path(self.rel_path).suffix.lower()


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def prepare_file(
    rel_path: str,
    path: Path,
    cfg: SplitConfig,
    max_bytes: int,
    digest: FileDigest | None = None,
    ocr: OCRSettings | None = None,
) -> PreparedFile:
    """Load and split one file. Every failure is recorded on the result; nothing propagates."""
    prepared = PreparedFile(rel_path, digest)
    try:
        prepared.loader = loaders.loader_name(path)
        if prepared.digest is None:
            prepared.digest = digest_file(path)
        if prepared.digest.size > max_bytes:
            raise FileTooLarge(f"{rel_path} is larger than {max_bytes // (1 << 20)} MiB")
        docs = loaders.load_file(path, ocr)
        chunks = split_documents(docs, cfg, prepared.ext)
        if not chunks and prepared.digest.size > 0:
            raise EmptyDocument(f"{rel_path} parsed to no text")
        for chunk in chunks:
            chunk.metadata["source"] = rel_path
        prepared.chunks = chunks
        # Segmenting here, on the parse threads, keeps jieba out of the write transaction.
        prepared.keywords = [index_text(c.text) for c in chunks]
    except KBQAError as exc:
        prepared.error = exc.message
    except Exception as exc:  # a parser bug must fail this file only, never the whole ingest
        log.exception("unexpected error while parsing %s", rel_path)
        prepared.error = f"{rel_path}: could not be parsed ({type(exc).__name__})"
    return prepared


def prepare_many(
    jobs: Iterable[Callable[[], PreparedFile]], workers: int, prefetch: int | None = None
) -> Iterator[PreparedFile]:
    """Run preparation jobs on ``workers`` threads, at most ``prefetch`` ahead, yielding results in order."""
    ahead = prefetch or workers * 4
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kbqa-parse") as pool:
        pending: deque[Future[PreparedFile]] = deque()
        for job in jobs:
            pending.append(pool.submit(job))
            if len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def embed_files(
    files: Sequence[PreparedFile],
    embedder: Embedder,
    batch_size: int,
    known: dict[str, bytes] | None = None,
) -> int:
    """Fill ``vectors`` of every file that has chunks, reusing ``known`` embeddings by text hash.

    Texts of all files are embedded together in ``batch_size`` batches; identical texts are embedded once.
    Returns how many texts went through the model.
    """
    known = known or {}
    todo: dict[str, str] = {}
    for f in files:
        for chunk in f.chunks:
            sha = text_sha256(chunk.text)
            if sha not in known and sha not in todo:
                todo[sha] = chunk.text
    fresh: dict[str, np.ndarray] = {}
    items = list(todo.items())
    for start in range(0, len(items), batch_size):
        part = items[start : start + batch_size]
        vecs = embedder.embed_documents([t for _, t in part])
        for (sha, _), vec in zip(part, vecs, strict=True):
            fresh[sha] = vec
    dim = embedder.dim
    for f in files:
        if not f.chunks:
            f.vectors = np.zeros((0, dim), np.float32)
            continue
        rows = []
        for chunk in f.chunks:
            sha = text_sha256(chunk.text)
            vec = fresh.get(sha)
            rows.append(vec if vec is not None else np.frombuffer(known[sha], dtype="<f4"))
        f.vectors = np.vstack(rows).astype(np.float32, copy=False)
    return len(items)
