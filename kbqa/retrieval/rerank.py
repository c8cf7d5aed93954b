"""Optional cross-encoder re-ranking, loaded once per process from a local folder."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from kbqa.embeddings.sentence_transformer import pick_device
from kbqa.errors import ConfigError, EmbeddingModelError


class CrossEncoderReranker:
    def __init__(self, path: str, device: str = "auto", max_length: int = 512) -> None:
        from sentence_transformers import CrossEncoder

        try:
            self._model = CrossEncoder(path, device=pick_device(device), max_length=max_length, num_labels=1)
        except Exception as exc:  # many loader errors; the user needs the path and the reason
            raise EmbeddingModelError(f"cannot load reranker from {path!r}: {exc}") from exc
        self.path = path
        self._lock = threading.Lock()

    def scores(self, query: str, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0, np.float32)
        with self._lock:
            out = self._model.predict([(query, t) for t in texts], convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32).reshape(len(texts))


class RerankerCache:
    """One reranker per model path, built on first use (a new model per request was Chatchat's mistake)."""

    def __init__(self, device: str = "auto") -> None:
        self.device = device
        self._models: dict[str, CrossEncoderReranker] = {}
        self._lock = threading.Lock()

    def get(self, path: str | None) -> CrossEncoderReranker:
        if not path:
            raise ConfigError("reranking was requested but retrieval.rerank_model is not set")
        with self._lock:
            model = self._models.get(path)
            if model is None:
                model = CrossEncoderReranker(path, self.device)
                self._models[path] = model
            return model
