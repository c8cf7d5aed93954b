"""Vector store backends by name. Optional backends are imported only when asked for."""

from __future__ import annotations

from kbqa.errors import ConfigError, InvalidOption
from kbqa.store.base import VectorStore


def store_class(vs_type: str) -> type[VectorStore]:
    if vs_type == "faiss":
        from kbqa.store.faiss_store import FaissStore

        return FaissStore
    raise ConfigError(f"unknown vector store type {vs_type!r}; available: faiss")


def available_types() -> list[str]:
    return ["faiss"]


def requested_type(vs_type: str | None) -> str | None:
    """A vector store type taken from a request: empty (the server's default) or an available one; anything else is
    the client's mistake (400), unlike a bad kb.default_vs_type in the settings (ConfigError, 500)."""
    if vs_type and vs_type not in available_types():
        raise InvalidOption(f"unknown vector store type {vs_type[:100]!r}; available: {', '.join(available_types())}")
    return vs_type or None
