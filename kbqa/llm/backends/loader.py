"""Choosing and loading the backend a worker serves."""

from __future__ import annotations

from pathlib import Path

from kbqa.llm.backends.base import ModelBackend
from kbqa.llm.backends.model_files import bundled_gguf_path, default_model_name
from kbqa.llm.errors import ModelLoadError
from kbqa.llm.settings import WorkerSettings


def load_backend(settings: WorkerSettings) -> ModelBackend:
    from kbqa.llm.backends.embedding_backend import (
        SentenceTransformersBackend,
        is_sentence_transformers_folder,
    )

    path = Path(settings.model_path).expanduser() if settings.model_path else bundled_gguf_path()
    if not path.exists():
        raise ModelLoadError(f"model path does not exist: {path} (weights are never downloaded at run time)")
    names = settings.model_names or [default_model_name(path)]
    kind = settings.backend
    if kind == "auto":
        kind = "sentence_transformers" if is_sentence_transformers_folder(path) else "transformers"
    if kind == "sentence_transformers":
        return SentenceTransformersBackend.load(path, settings, names)
    from kbqa.llm.backends.transformers_backend import TransformersBackend

    return TransformersBackend.load(path, settings, names)
