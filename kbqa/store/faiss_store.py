"""FAISS exhaustive inner-product index (int8 codes) with stable ids, persisted crash-safely.

Vectors are stored as signed 8-bit integers: each component times a per-index scale, rounded. FAISS scans those
codes with integer SIMD (1.5 ms for 100k x 384 against 2.9 ms for float16 codes and 5 ms for float32, one thread;
benchmarks/search.py), and the scale is chosen from the first vectors added so the components use most of the int8
range (mE5: components within +-0.19, scale ~450). Rounding the vectors and the query moves a cosine by about 1e-3;
exact float32 vectors stay in the database, and the scores shown for hits are computed from them.

On disk, per KB and embedding model: ``index-<generation>.faiss`` files and a ``CURRENT`` file naming the live one.
Each file is written to a temp name, fsynced and renamed; ``CURRENT`` is replaced the same way, so a kill at any
moment leaves either the old or the new generation readable. No pickle is ever loaded.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
from collections.abc import Mapping
from pathlib import Path

import faiss
import numpy as np

from kbqa.atomic_file import atomic_write_bytes
from kbqa.store.base import VectorStore

CURRENT = "CURRENT"
CODEC = "int8"
# Headroom over the largest component seen when the scale is chosen; larger components later are clipped.
_SCALE_HEADROOM = 1.5


_omp = threading.local()


def _single_omp_thread() -> None:
    # A flat scan of one query is memory-bound: a second OpenMP thread only adds start-up cost, and stalls badly
    # when the other core is busy (measured at 100k vectors: 5.7 ms with one thread, 44 ms with two). The setting
    # is per thread and the call itself costs ~1.7 ms, so each searching thread makes it once.
    if not getattr(_omp, "single", False):
        faiss.omp_set_num_threads(1)
        _omp.single = True


class FaissStore(VectorStore):
    def __init__(self, index: faiss.IndexIDMap2, dim: int, scale: float | None = None) -> None:
        self.index = index
        self.dim = dim
        self.scale = scale  # int8 units per unit of a vector component; set by the first add

    @classmethod
    def empty(cls, dim: int) -> FaissStore:
        codes = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit_direct_signed, faiss.METRIC_INNER_PRODUCT)
        return cls(faiss.IndexIDMap2(codes), dim)

    def params(self) -> dict[str, float]:
        return {} if self.scale is None else {"scale": self.scale}

    @classmethod
    def empty_with(cls, dim: int, params: Mapping[str, float]) -> FaissStore:
        store = cls.empty(dim)
        scale = params.get("scale")
        if scale is not None and math.isfinite(scale) and scale > 0:
            store.scale = float(scale)
        return store

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids) == 0:
            return
        vecs = np.asarray(vectors, dtype=np.float32).reshape(len(ids), self.dim)
        if self.scale is None:
            largest = float(np.abs(vecs).max())
            self.scale = 127.0 / (_SCALE_HEADROOM * largest) if largest > 0 else 127.0
        # QT_8bit_direct_signed stores each value + 128 as a byte: the values must already be integers in range.
        codes = np.clip(np.rint(vecs * self.scale), -128, 127).astype(np.float32)
        self.index.add_with_ids(np.ascontiguousarray(codes), np.ascontiguousarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> int:
        if len(ids) == 0:
            return 0
        return int(self.index.remove_ids(np.ascontiguousarray(ids, dtype=np.int64)))

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        q = np.asarray(queries, dtype=np.float32).reshape(-1, self.dim)
        # FAISS's SIMD scan of int8 codes truncates the query to integers too: give each query its own scale so its
        # largest component maps to 127, and divide both scales out of the scores.
        q_scale = 127.0 / np.maximum(np.abs(q).max(axis=1, keepdims=True), 1e-12)
        q = np.ascontiguousarray(np.rint(q * q_scale), dtype=np.float32)
        _single_omp_thread()
        n = self.index.ntotal
        if n == 0 or k <= 0 or (allowed is not None and len(allowed) == 0):
            return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        if allowed is None:
            scores, ids = self.index.search(q, min(k, n))
        else:
            params = faiss.SearchParameters()
            params.sel = faiss.IDSelectorBatch(np.ascontiguousarray(allowed, dtype=np.int64))
            scores, ids = self.index.search(q, min(k, n, len(allowed)), params=params)
        return (scores / (q_scale * (self.scale or 1.0))).astype(np.float32), ids

    def count(self) -> int:
        return int(self.index.ntotal)

    def copy(self) -> FaissStore:
        return FaissStore(faiss.clone_index(self.index), self.dim, self.scale)

    def save(self, folder: Path, generation: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        data = faiss.serialize_index(self.index).tobytes()
        atomic_write_bytes(folder / f"index-{generation}.faiss", data)
        pointer = {
            "generation": generation,
            "file": f"index-{generation}.faiss",
            "dim": self.dim,
            "count": self.count(),
            "codec": CODEC,
            "scale": self.scale,
        }
        atomic_write_bytes(folder / CURRENT, json.dumps(pointer).encode())
        for old in folder.glob("index-*.faiss"):
            if old.name != pointer["file"]:
                with contextlib.suppress(FileNotFoundError):
                    old.unlink()

    @classmethod
    def load(cls, folder: Path, dim: int) -> tuple[FaissStore, int] | None:
        try:
            pointer = json.loads((folder / CURRENT).read_text())
            if pointer.get("codec") != CODEC:  # saved by an earlier version (float16 codes): rebuilt from the DB
                return None
            generation = int(pointer["generation"])
            scale = None if pointer.get("scale") is None else float(pointer["scale"])
            raw = np.fromfile(folder / f"index-{generation}.faiss", dtype=np.uint8)
            index = faiss.deserialize_index(raw)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError):
            return None
        if index.d != dim or not isinstance(index, faiss.IndexIDMap2):
            return None
        return cls(index, dim, scale), generation
