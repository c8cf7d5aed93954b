"""Any sentence-transformers model folder (bge, m3e, MiniLM, e5, ...), on CUDA when present."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from kbqa.embeddings.base import normalize_rows
from kbqa.errors import EmbeddingModelError


def pick_device(requested: str) -> str:
    if requested != "auto":
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class SentenceTransformerEmbedder:
    def __init__(
        self,
        name: str,
        path: str,
        device: str = "auto",
        batch_size: int = 32,
        query_prefix: str = "",
        passage_prefix: str = "",
    ) -> None:
        from sentence_transformers import SentenceTransformer

        self.device = pick_device(device)
        try:
            self._model = SentenceTransformer(path, device=self.device)
        except Exception as exc:  # the library raises many kinds; the user needs the path and the reason
            raise EmbeddingModelError(f"cannot load embedding model {name!r} from {path!r}: {exc}") from exc
        self.name = name
        dim = self._model.get_embedding_dimension()
        if dim is None:
            dim = int(self._model.encode(["probe"], convert_to_numpy=True).shape[1])
        self.dim = int(dim)
        self.batch_size = batch_size
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self._lock = threading.Lock()

    def _encode(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            vecs = self._model.encode(
                texts,
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return normalize_rows(np.asarray(vecs, dtype=np.float32).reshape(len(texts), self.dim))

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return self._encode([self.passage_prefix + t for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._encode([self.query_prefix + text])[0]

    def token_count(self, texts: Sequence[str]) -> int:
        if not texts:
            return 0
        limit = self._model.max_seq_length  # the model truncates there: count what it reads
        ids = self._model.tokenizer([self.passage_prefix + t for t in texts], truncation=True, max_length=limit)
        return sum(len(row) for row in ids["input_ids"])
