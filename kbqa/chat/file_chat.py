"""Temporary knowledge bases for /chat/file_chat: files uploaded with /knowledge_base/upload_temp_docs.

Chatchat joined the raw upload name to its temp dir (arbitrary file write) and wiped the whole temp dir on every
import. Here each temp KB is a folder named by a random id under one root; names are validated and resolved inside
it; only folders that look like our ids are ever removed; at most ``capacity`` temp KBs are kept (LRU).
"""

from __future__ import annotations

import re
import shutil
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from kbqa.embeddings.pool import EmbedderPool
from kbqa.errors import FileTooLarge, KBQAError
from kbqa.ingest.ocr.settings import OCRSettings
from kbqa.ingest.pipeline import prepare_file
from kbqa.ingest.splitters import SplitConfig
from kbqa.knowledge.naming import normalize_relative_path, resolve_inside
from kbqa.knowledge.service import SearchHit

_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_COPY_CHUNK = 1 << 20


class TempKBNotFound(KBQAError):
    status_code = 404


@dataclass
class TempKB:
    id: str
    folder: Path
    embed_model: str
    paths: list[str]
    texts: list[str]
    metas: list[dict]
    vectors: np.ndarray  # (n, dim), L2-normalised


class TempKBStore:
    def __init__(
        self,
        root: Path,
        capacity: int,
        embedders: EmbedderPool,
        embed_model: str,
        max_file_bytes: int,
        ocr: OCRSettings | None = None,
    ):
        self.root = root
        self.capacity = capacity
        self.embedders = embedders
        self.embed_model = embed_model
        self.max_file_bytes = max_file_bytes
        self.ocr = ocr
        self._kbs: OrderedDict[str, TempKB] = OrderedDict()
        self._lock = threading.Lock()

    def clean(self) -> None:
        """Remove leftovers of an earlier run: only folders named like our ids, never anything else."""
        if not self.root.is_dir():
            return
        for child in self.root.iterdir():
            if _ID_RE.match(child.name) and child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)

    def create(
        self, files: list[tuple[str, BinaryIO]], split: SplitConfig, prev_id: str | None = None
    ) -> tuple[str, list[dict[str, str]]]:
        """Save, parse and embed the files; returns (temp KB id, [{file name: reason}] for files that failed)."""
        if prev_id:
            self.drop(prev_id)
        kb_id = uuid.uuid4().hex
        folder = self.root / kb_id
        folder.mkdir(parents=True)
        failed: list[dict[str, str]] = []
        paths: list[str] = []
        texts: list[str] = []
        metas: list[dict] = []
        for raw_name, stream in files:
            rel = normalize_relative_path(raw_name)  # callers validate first; this is the last line of defence
            try:
                target = resolve_inside(folder, rel)
                target.parent.mkdir(parents=True, exist_ok=True)
                _copy_limited(stream, target, self.max_file_bytes, rel)
                prepared = prepare_file(rel, target, split, self.max_file_bytes, ocr=self.ocr)
                if prepared.error:
                    raise KBQAError(prepared.error)
            except KBQAError as exc:
                failed.append({raw_name: exc.message})
                continue
            except OSError as exc:
                failed.append({raw_name: f"{rel}: cannot be saved ({exc.strerror})"})
                continue
            for chunk in prepared.chunks:
                paths.append(rel)
                texts.append(chunk.text)
                metas.append(dict(chunk.metadata))
        embedder = self.embedders.get(self.embed_model)
        vectors = embedder.embed_documents(texts) if texts else np.zeros((0, embedder.dim), dtype=np.float32)
        kb = TempKB(kb_id, folder, self.embed_model, paths, texts, metas, np.asarray(vectors, dtype=np.float32))
        with self._lock:
            self._kbs[kb_id] = kb
            while len(self._kbs) > self.capacity:
                _, old = self._kbs.popitem(last=False)
                shutil.rmtree(old.folder, ignore_errors=True)
        return kb_id, failed

    def drop(self, kb_id: str) -> None:
        with self._lock:
            kb = self._kbs.pop(kb_id, None)
        if kb is not None:
            shutil.rmtree(kb.folder, ignore_errors=True)

    def exists(self, kb_id: str) -> bool:
        with self._lock:
            return kb_id in self._kbs

    def search(self, kb_id: str, query: str, top_k: int, score_threshold: float | None) -> list[SearchHit]:
        with self._lock:
            kb = self._kbs.get(kb_id)
            if kb is not None:
                self._kbs.move_to_end(kb_id)
        if kb is None:
            raise TempKBNotFound(f"temporary knowledge base {kb_id} not found")
        if not len(kb.texts) or not query.strip():
            return []
        q = self.embedders.get(kb.embed_model).embed_query(query).reshape(-1)
        cos = kb.vectors @ q
        hits = []
        for i in np.argsort(-cos)[:top_k]:
            hit = SearchHit(int(i), kb_id, kb.paths[i], int(i), kb.texts[i], kb.metas[i], float(cos[i]))
            if score_threshold is None or hit.distance <= score_threshold:
                hits.append(hit)
        return hits


def _copy_limited(source: BinaryIO, target: Path, max_bytes: int, name: str) -> None:
    written = 0
    with target.open("xb") as out:
        while block := source.read(_COPY_CHUNK):
            written += len(block)
            if written > max_bytes:
                raise FileTooLarge(f"file {name} is larger than {max_bytes // (1 << 20)} MiB")
            out.write(block)
