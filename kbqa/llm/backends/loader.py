"""Choosing and loading the backend a worker serves."""

from __future__ import annotations

import logging
from pathlib import Path

from kbqa.llm.backends.base import ModelBackend
from kbqa.llm.backends.model_files import bundled_gguf_path, default_model_name
from kbqa.llm.errors import ModelLoadError
from kbqa.llm.model_catalog import resolve
from kbqa.llm.settings import WorkerSettings

log = logging.getLogger(__name__)

# auto gives llama.cpp the GGUF files from this size up. Below it the fp32 copy is small and torch's GEMMs prefill a
# knowledge-base prompt several times faster than llama.cpp's quantized kernels do on the same CPU (the bundled
# 89 MB SmolLM2: 700 prompt tokens in ~1/3 of llama.cpp's 4.9 s; a Chinese question's first token 3.2 s against
# 24-37 s under load), while decode speed matters less for short grounded answers. Above it (Qwen2.5 0.5B: 469 MB,
# 2 GB in fp32 at ~3 tokens/s) llama.cpp's memory and decode speed win (benchmarks/RESULTS.md, "CPU engines").
LLAMA_CPP_MIN_GGUF_BYTES = 200 * 1024 * 1024


def load_backend(settings: WorkerSettings) -> ModelBackend:
    from kbqa.llm.backends.embedding_backend import SentenceTransformersBackend

    path = resolve(settings.model_path, settings.models_dir) if settings.model_path else bundled_gguf_path()
    if not path.exists():
        raise ModelLoadError(f"model path does not exist: {path} (weights are never downloaded at run time)")
    names = settings.model_names or [default_model_name(path)]
    kind = settings.backend
    if kind == "auto":
        kind = _auto_backend(path, settings)
    if kind == "sentence_transformers":
        return SentenceTransformersBackend.load(path, settings, names)
    if kind == "llama_cpp":
        from kbqa.llm.backends.llamacpp_backend import LlamaCppBackend, llama_cpp_available

        if llama_cpp_available():
            return LlamaCppBackend.load(path, settings, names)
        log.warning(
            "the llama_cpp backend is unavailable (llama-cpp-python is not installed or its library does not load; "
            "`bash scripts/install.sh` builds it): falling back to transformers, which runs the model in fp32 "
            "and several times slower on a CPU"
        )
    from kbqa.llm.backends.transformers_backend import TransformersBackend

    return TransformersBackend.load(path, settings, names)


def _auto_backend(path: Path, settings: WorkerSettings) -> str:
    from kbqa.llm.backends.embedding_backend import is_sentence_transformers_folder

    if is_sentence_transformers_folder(path):
        return "sentence_transformers"
    if (
        path.is_file()
        and path.suffix == ".gguf"
        and path.stat().st_size >= LLAMA_CPP_MIN_GGUF_BYTES
        and not _wants_gpu(settings)
    ):
        return "llama_cpp"
    return "transformers"


def _wants_gpu(settings: WorkerSettings) -> bool:
    if settings.device == "cpu":
        return False
    if settings.device == "cuda":
        return True
    import torch

    return bool(torch.cuda.is_available())
