"""The narrow contract every vector store backend meets.

Vectors are L2-normalised float32; scores are inner products (= cosine). Ids are the metadata DB's chunk ids, so a
store never owns text or metadata. A store is a value a writer copies, changes, persists and then publishes:
readers keep searching the previous copy and never wait for a writer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path

import numpy as np


class VectorStore(ABC):
    dim: int

    @abstractmethod
    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under the given int64 ids (ids not already present)."""

    @abstractmethod
    def remove(self, ids: np.ndarray) -> int:
        """Remove these ids; unknown ids are ignored. Returns how many were removed."""

    @abstractmethod
    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, ids) per query row, best first; missing slots have id -1. ``allowed`` restricts the ids
        considered (metadata or file filters)."""

    @abstractmethod
    def count(self) -> int: ...

    @abstractmethod
    def copy(self) -> VectorStore:
        """An independent copy a writer can change while readers use this one."""

    @abstractmethod
    def save(self, folder: Path, generation: int) -> None:
        """Persist atomically, recording the metadata-DB generation this content matches."""

    @classmethod
    @abstractmethod
    def load(cls, folder: Path, dim: int) -> tuple[VectorStore, int] | None:
        """The saved store and its generation, or None when nothing usable is saved."""

    @classmethod
    @abstractmethod
    def empty(cls, dim: int) -> VectorStore: ...

    def params(self) -> dict[str, float]:
        """What this store chose from the data it was given (a quantiser's scale), which another copy built from the
        same vectors needs to answer identically (a knowledge base restored from a backup). Empty: nothing."""
        return {}

    @classmethod
    def empty_with(cls, dim: int, params: Mapping[str, float]) -> VectorStore:
        """An empty store that will encode vectors as the store ``params`` came from did."""
        return cls.empty(dim)
