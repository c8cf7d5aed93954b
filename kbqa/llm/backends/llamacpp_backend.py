"""Chat and text generation with llama.cpp: GGUF weights run quantized on the CPU, batched continuously.

transformers dequantizes a GGUF file to fp32 and decodes the 0.5B model at ~3 tokens/s on two cores; llama.cpp runs
the same file in its own quantized kernels (figures in benchmarks/RESULTS.md). The engine comes from the
``llama-cpp-python`` package (built from source at install); its low-level bindings are used, not its ``Llama``
class, because that class serves one sequence at a time. Tokenization and chat templates use the Hugging Face
tokenizer read from the same GGUF file, so prompts are built exactly as on the transformers path.
"""

from __future__ import annotations

import ctypes
import logging
import os
import time
from pathlib import Path
from typing import Any

import torch

from kbqa.llm.backends.chat_backend import BatchedChatBackend
from kbqa.llm.backends.llamacpp_batching import LlamaCppBatcher
from kbqa.llm.backends.model_files import ensure_tokenizer_folder
from kbqa.llm.errors import ModelLoadError
from kbqa.llm.protocol import ModelDetails
from kbqa.llm.settings import WorkerSettings

log = logging.getLogger(__name__)

# A request's context when none is configured: llama.cpp allocates every slot's cells up front, and a GGUF's trained
# length (32k for Qwen2.5) times the slots would take gigabytes that RAG prompts (under 2k tokens) never use.
DEFAULT_CONTEXT = 4096


def import_llama_cpp() -> Any:
    """The ``llama_cpp`` bindings, or :class:`ModelLoadError` saying how to get them."""
    try:
        import llama_cpp
    except (ImportError, OSError) as exc:  # OSError: the package is there but its shared library is not loadable
        raise ModelLoadError(
            f"the llama.cpp backend is unavailable ({exc}); install it with `bash scripts/install.sh` "
            "(it builds llama-cpp-python from source)"
        ) from exc
    # The library prints every load step to stderr; route it to nothing but errors.
    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
    return llama_cpp


def llama_cpp_available() -> bool:
    try:
        import_llama_cpp()
    except ModelLoadError:
        return False
    return True


def engine_threads(requested: int) -> int:
    """llama.cpp threads: ``requested``, or all cores but one, as for torch. Its threads meet at a barrier after
    every op, so one that loses its core to a neighbour (the API server, the embedder during an upload) stalls them
    all: on 2 cores with a busy neighbour, 2 threads took 3.1 s per decode step of a 1.5B model, 1 thread 0.14 s."""
    return requested or max(1, (os.cpu_count() or 2) - 1)


class LlamaCppBackend(BatchedChatBackend):
    def __init__(
        self,
        lib: Any,
        model: Any,
        ctx: Any,
        tokenizer: Any,
        settings: WorkerSettings,
        model_names: list[str],
        *,
        context_length: int,
        slots: int,
        n_batch: int,
    ) -> None:
        self._lib = lib
        self._model = model
        self._ctx = ctx
        vocab = lib.llama_model_get_vocab(model)
        vocab_size = int(lib.llama_vocab_n_tokens(vocab))
        # End-of-generation ids as llama.cpp knows them (im_end, eot, eos...), plus the tokenizer's own.
        eos = {t for t in range(vocab_size) if lib.llama_vocab_is_eog(vocab, t)}
        if tokenizer.eos_token_id is not None:
            eos.add(int(tokenizer.eos_token_id))
        details = ModelDetails(
            model_names=model_names,
            kind="chat",
            context_length=context_length,
            device="cpu",
            dtype=_quantization_of(lib, model),
            max_batch_size=slots,
        )
        batcher = LlamaCppBatcher(
            lib,
            ctx,
            vocab_size,
            tokenizer,
            n_batch=n_batch,
            kv_bytes=_kv_bytes(lib, model, context_length * slots),
            eos_token_ids=eos,
            context_length=context_length,
            max_batch_size=slots,
            max_queue_size=settings.max_queue_size,
            max_prefill_tokens=settings.max_prefill_tokens,
            retry_after_s=settings.retry_after_s,
        )
        super().__init__(tokenizer, batcher, settings, details)

    @classmethod
    def load(cls, model_path: Path, settings: WorkerSettings, model_names: list[str]) -> LlamaCppBackend:
        lib = import_llama_cpp()
        if not (model_path.is_file() and model_path.suffix == ".gguf"):
            raise ModelLoadError(f"the llama.cpp backend loads .gguf files; {model_path} is not one")
        started = time.perf_counter()
        lib.llama_backend_init()
        model_params = lib.llama_model_default_params()
        model = lib.llama_model_load_from_file(str(model_path).encode(), model_params)
        if not model:
            raise ModelLoadError(f"llama.cpp cannot read {model_path} (not a GGUF model it supports, or damaged)")
        try:
            tokenizer = _load_tokenizer(model_path, settings.model_cache_dir)
        except BaseException:
            lib.llama_model_free(model)
            raise
        trained = int(lib.llama_model_n_ctx_train(model))
        context_length = min(settings.context_length or DEFAULT_CONTEXT, trained, settings.kv_cache_tokens)
        slots = max(1, min(settings.max_batch_size, settings.kv_cache_tokens // context_length))
        n_batch = settings.max_prefill_tokens + slots
        params = lib.llama_context_default_params()
        params.n_ctx = slots * context_length
        params.n_batch = n_batch
        params.n_ubatch = min(n_batch, 512)
        params.n_seq_max = slots
        params.kv_unified = False  # a stream per slot: see llamacpp_batching's docstring
        threads = engine_threads(settings.num_threads)
        # torch only samples here; its OpenMP threads keep spinning after each op and took the cores from
        # llama.cpp's (the scheduler tests ran 5x slower beside a torch thread pool).
        torch.set_num_threads(1)
        params.n_threads = threads
        params.n_threads_batch = threads
        params.no_perf = True
        ctx = lib.llama_init_from_model(model, params)
        if not ctx:
            lib.llama_model_free(model)
            raise ModelLoadError(
                f"llama.cpp could not create {slots} KV slots of {context_length} tokens for {model_path}"
            )
        log.info(
            "loaded %s with llama.cpp in %.1f s (%d threads, %d slots of %d tokens)",
            model_path,
            time.perf_counter() - started,
            threads,
            slots,
            context_length,
        )
        return cls(
            lib,
            model,
            ctx,
            tokenizer,
            settings,
            model_names,
            context_length=context_length,
            slots=slots,
            n_batch=n_batch,
        )

    def close(self) -> None:
        super().close()
        assert isinstance(self.batcher, LlamaCppBatcher)
        if self.batcher.is_running():
            # Still inside a llama_decode after the shutdown wait: freeing now would pull the memory from under it.
            log.warning("the llama.cpp scheduler did not stop in time; its context is left to the process exit")
            return
        self.batcher.close()
        if self._ctx:
            self._lib.llama_free(self._ctx)
            self._ctx = None
        if self._model:
            self._lib.llama_model_free(self._model)
            self._model = None


def _load_tokenizer(gguf_file: Path, cache_dir: Path | None) -> Any:
    from transformers import AutoTokenizer

    folder = ensure_tokenizer_folder(gguf_file, cache_dir)
    try:
        return AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load the tokenizer of {gguf_file}: {exc}") from exc


def _quantization_of(lib: Any, model: Any) -> str:
    """The file's weight type as llama.cpp describes the model, e.g. "Q4_K - Medium"."""
    buf = ctypes.create_string_buffer(256)
    lib.llama_model_desc(model, buf, len(buf))
    desc = buf.value.decode("utf-8", "replace")
    # "qwen2 1.5B Q4_K - Medium": the type is what follows the size.
    parts = desc.split(" ", 2)
    return parts[2] if len(parts) == 3 else desc or "gguf"


def _kv_bytes(lib: Any, model: Any, cells: int) -> int:
    """K and V in f16 (llama.cpp's default cache type) for every layer and cell."""
    layers = int(lib.llama_model_n_layer(model))
    heads, kv_heads = int(lib.llama_model_n_head(model)), int(lib.llama_model_n_head_kv(model))
    head_dim = int(lib.llama_model_n_embd(model)) // max(1, heads)
    return cells * layers * 2 * kv_heads * head_dim * 2
