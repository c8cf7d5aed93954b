"""Vector store backends by name. Optional backends are imported only when asked for."""

from __future__ import annotations

from kbqa.errors import ConfigError
from kbqa.store.base import VectorStore


def store_class(vs_type: str) -> type[VectorStore]:
    if vs_type == "faiss":
        from kbqa.store.faiss_store import FaissStore

        return FaissStore
    raise ConfigError(f"unknown vector store type {vs_type!r}; available: faiss")


def available_types() -> list[str]:
    return ["faiss"]
