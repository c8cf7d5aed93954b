"""The Embedder seam: five members, nothing else."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors. Implementations are thread-safe."""

    name: str
    dim: int

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) vectors for passages to be indexed."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        """(dim,) vector for a search query."""
        ...

    def token_count(self, texts: Sequence[str]) -> int:
        """Tokens the model reads for these passages, special tokens included (what OpenAI's usage reports)."""
        ...


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    vecs = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vecs, axis=-1, keepdims=True)
    norms[norms == 0] = 1.0
    return vecs / norms
