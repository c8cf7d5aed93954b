"""Chat and text generation with a Hugging Face causal LM (torch), batched continuously across requests."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import torch

from kbqa.llm.backends.chat_backend import BatchedChatBackend
from kbqa.llm.backends.model_files import ensure_hf_folder
from kbqa.llm.backends.transformers_batching import TransformersBatcher
from kbqa.llm.errors import ModelLoadError
from kbqa.llm.protocol import ModelDetails
from kbqa.llm.settings import WorkerSettings

log = logging.getLogger(__name__)

_CONTEXT_FIELDS = (
    "max_position_embeddings",
    "max_sequence_length",
    "seq_length",
    "max_seq_len",
    "n_positions",
)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("--device cuda was asked for but no CUDA device is available")
    return torch.device(device)


def configure_cpu_threads(requested: int) -> int:
    """Set torch's intra-op threads: ``requested``, or all cores but one when 0."""
    threads = requested or max(1, (os.cpu_count() or 2) - 1)
    torch.set_num_threads(threads)
    return threads


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        # fp32 on CPU: bf16 matmuls are about twice as slow on the CPUs we run on.
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return getattr(torch, dtype)


def context_length_of(config: Any) -> int:
    """The trained context length. ``rope_scaling`` is not multiplied in: configs that extend the context already
    say so in ``max_position_embeddings`` (Llama 3.1), which FastChat multiplied into a million tokens."""
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    for name in _CONTEXT_FIELDS:
        value = getattr(text_config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return 2048


def eos_ids_of(model: Any, tokenizer: Any) -> set[int]:
    """EOS ids from generation_config (may be a list, e.g. Llama 3's eot ids) plus the tokenizer's."""
    ids: set[int] = set()
    generation_config = getattr(model, "generation_config", None)
    configured = getattr(generation_config, "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif isinstance(configured, list | tuple):
        ids.update(int(i) for i in configured)
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    return ids


class TransformersBackend(BatchedChatBackend):
    def __init__(self, model: Any, tokenizer: Any, settings: WorkerSettings, model_names: list[str]) -> None:
        self.model = model
        self.device = next(model.parameters()).device
        context_length = settings.context_length or context_length_of(model.config)
        details = ModelDetails(
            model_names=model_names,
            kind="chat",
            context_length=context_length,
            device=str(self.device),
            dtype=str(next(model.parameters()).dtype).removeprefix("torch."),
            max_batch_size=settings.max_batch_size,
        )
        batcher = TransformersBatcher(
            model,
            tokenizer,
            eos_token_ids=eos_ids_of(model, tokenizer),
            context_length=context_length,
            max_batch_size=settings.max_batch_size,
            max_queue_size=settings.max_queue_size,
            max_prefill_tokens=settings.max_prefill_tokens,
            retry_after_s=settings.retry_after_s,
        )
        super().__init__(tokenizer, batcher, settings, details)

    @classmethod
    def load(cls, model_path: Path, settings: WorkerSettings, model_names: list[str]) -> TransformersBackend:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        folder = ensure_hf_folder(model_path, settings.model_cache_dir)
        device = resolve_device(settings.device)
        dtype = resolve_dtype(settings.dtype, device)
        configure_cpu_threads(settings.num_threads)
        started = time.perf_counter()
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder)
            model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device).eval()
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load {folder}: {exc}") from exc
        log.info("loaded %s on %s (%s) in %.1f s", folder, device, dtype, time.perf_counter() - started)
        return cls(model, tokenizer, settings, model_names)
