"""Chat and text generation with a Hugging Face causal LM, batched continuously across requests."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from kbqa.llm.backends.base import EventStream, ModelBackend
from kbqa.llm.backends.batching import ContinuousBatcher, Sequence
from kbqa.llm.backends.model_files import ensure_hf_folder
from kbqa.llm.errors import ContextOverflow, InvalidRequest, ModelLoadError
from kbqa.llm.protocol import (
    CountTokensRequest,
    GenerateEvent,
    GenerateRequest,
    ModelDetails,
    WorkerMessage,
)
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


@dataclass
class _Prepared:
    prompt_ids: list[int]
    max_new_tokens: int
    echo_text: str


class _SequenceStream(EventStream):
    def __init__(self, seq: Sequence, queue: asyncio.Queue[GenerateEvent], first: GenerateEvent | None) -> None:
        self._seq = seq
        self._queue = queue
        self._first = first
        self._done = False

    async def __anext__(self) -> GenerateEvent:
        if self._done:
            raise StopAsyncIteration
        if self._first is not None:
            event, self._first = self._first, None
            return event
        try:
            event = await self._queue.get()
        except BaseException:
            self._seq.cancel()
            raise
        if event.finish_reason is not None or event.error is not None:
            self._done = True
        return event

    async def aclose(self) -> None:
        self._done = True
        if not self._seq.finished:
            self._seq.cancel()


class TransformersBackend(ModelBackend):
    def __init__(self, model: Any, tokenizer: Any, settings: WorkerSettings, model_names: list[str]) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.settings = settings
        self.device = next(model.parameters()).device
        self.context_length = settings.context_length or context_length_of(model.config)
        self._details = ModelDetails(
            model_names=model_names,
            kind="chat",
            context_length=self.context_length,
            device=str(self.device),
            dtype=str(next(model.parameters()).dtype).removeprefix("torch."),
            max_batch_size=settings.max_batch_size,
        )
        self.batcher = ContinuousBatcher(
            model,
            tokenizer,
            eos_token_ids=eos_ids_of(model, tokenizer),
            context_length=self.context_length,
            max_batch_size=settings.max_batch_size,
            max_queue_size=settings.max_queue_size,
            max_prefill_tokens=settings.max_prefill_tokens,
            retry_after_s=settings.retry_after_s,
        )

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

    @property
    def details(self) -> ModelDetails:
        return self._details

    def queue_length(self) -> int:
        return self.batcher.queue_length()

    def close(self) -> None:
        self.batcher.shutdown()

    # -- prompts ------------------------------------------------------------------------------------------------
    def _chat_prompt_ids(self, messages: list[WorkerMessage]) -> list[int]:
        if not getattr(self.tokenizer, "chat_template", None):
            raise InvalidRequest("this model has no chat template; use /v1/completions with a prompt", param="messages")
        dicts = [m.model_dump(exclude_none=True) for m in messages]
        try:
            text = self.tokenizer.apply_chat_template(dicts, tokenize=False, add_generation_prompt=True)
        except Exception as exc:  # templates raise whatever their Jinja code raises
            raise InvalidRequest(f"the model's chat template rejected the messages: {exc}", param="messages") from exc
        # The template already wrote BOS and friends; adding special tokens again would double them.
        return list(self.tokenizer(text, add_special_tokens=False).input_ids)

    def _prompt_ids(self, request: GenerateRequest | CountTokensRequest) -> list[int]:
        if request.messages is not None:
            return self._chat_prompt_ids(request.messages)
        if isinstance(request, GenerateRequest) and request.prompt_token_ids is not None:
            vocab = len(self.tokenizer)
            if any(t < 0 or t >= vocab for t in request.prompt_token_ids):
                raise InvalidRequest(f"token ids must lie in [0, {vocab})", param="prompt")
            return list(request.prompt_token_ids)
        return list(self.tokenizer(request.prompt or "").input_ids)

    def _prepare(self, request: GenerateRequest) -> _Prepared:
        prompt_ids = self._prompt_ids(request)
        if not prompt_ids:
            raise InvalidRequest("the prompt is empty after tokenization", param="prompt")
        room = self.context_length - len(prompt_ids)
        limit = request.params.max_tokens
        if room <= 0 or (limit is not None and limit > room):
            asked = f" plus {limit} completion tokens" if limit is not None else ""
            raise ContextOverflow(
                f"This model's maximum context length is {self.context_length} tokens. However, you requested "
                f"{len(prompt_ids)} prompt tokens{asked}. Please reduce the length of the messages or completion.",
                param="messages" if request.messages is not None else "prompt",
            )
        if limit is None:
            limit = min(room, self.settings.default_max_tokens or room)
        echo = ""
        if request.echo:
            echo = request.prompt if request.prompt is not None else self.tokenizer.decode(prompt_ids)
        return _Prepared(prompt_ids, limit, echo)

    def count_tokens(self, request: CountTokensRequest) -> int:
        return len(self._prompt_ids(request))

    # -- generation ---------------------------------------------------------------------------------------------
    async def generate_stream(self, request: GenerateRequest) -> EventStream:
        prepared = await asyncio.to_thread(self._prepare, request)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[GenerateEvent] = asyncio.Queue()

        def sink(event: GenerateEvent) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, event)

        seq = Sequence(
            prompt_ids=prepared.prompt_ids,
            params=request.params,
            max_new_tokens=prepared.max_new_tokens,
            sink=sink,
        )
        self.batcher.submit(seq)
        first = GenerateEvent(text=prepared.echo_text) if prepared.echo_text else None
        return _SequenceStream(seq, queue, first)
