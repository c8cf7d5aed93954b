"""Continuous batching for a Hugging Face causal LM.

One scheduler thread owns the model. Between two decode steps it drops finished and cancelled sequences, prefills
the requests that arrived meanwhile (left-padded together), and merges their KV cache into the running batch's
cache. Each decode step is then *one* forward pass for every running sequence, which is where the throughput over
FastChat's one-request-at-a-time worker comes from.

Cache layout: one ``DynamicCache`` whose layers hold ``[batch, kv_heads, time, head_dim]`` tensors, left-padded.
``attention_mask`` [batch, time] marks the real positions and ``position_ids`` count real tokens per row, so rows of
different lengths share the tensors exactly as if each ran alone. Leading columns that became padding for every
row (after long sequences leave) are cut off, so the cache never grows beyond the longest running sequence.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import DynamicCache

from kbqa.llm.backends.sampling import RowState, choose_tokens
from kbqa.llm.backends.text_stream import IncrementalDetokenizer, StopStringMatcher
from kbqa.llm.errors import InternalError, LLMError, Overloaded
from kbqa.llm.protocol import FinishReason, GenerateEvent, SamplingParams, Usage

log = logging.getLogger(__name__)

EventSink = Callable[[GenerateEvent], None]


@dataclass
class EngineStats:
    forward_calls: int = 0
    prefill_calls: int = 0
    decode_steps: int = 0
    max_running: int = 0
    tokens_generated: int = 0


@dataclass
class Sequence:
    """One request inside the engine. ``sink`` is called from the scheduler thread."""

    prompt_ids: list[int]
    params: SamplingParams
    max_new_tokens: int
    sink: EventSink
    output_ids: list[int] = field(default_factory=list)
    cancelled: bool = False
    finished: bool = False
    generator: torch.Generator | None = None
    detokenizer: IncrementalDetokenizer | None = None
    stops: StopStringMatcher | None = None

    def cancel(self) -> None:
        # A plain attribute write is atomic under the GIL; the scheduler reads it between steps.
        self.cancelled = True

    def row_state(self) -> RowState:
        return RowState(self.params, self.prompt_ids, self.output_ids, self.generator)


class ContinuousBatcher:
    """Runs generation for many sequences at once on one model."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        eos_token_ids: set[int],
        context_length: int,
        max_batch_size: int = 32,
        max_queue_size: int = 256,
        max_prefill_tokens: int = 4096,
        retry_after_s: int = 1,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.device = next(model.parameters()).device
        self.eos_token_ids = eos_token_ids
        self.context_length = context_length
        self.max_batch_size = max_batch_size
        self.max_queue_size = max_queue_size
        self.max_prefill_tokens = max_prefill_tokens
        self.retry_after_s = retry_after_s
        self.pad_id = self._pad_id()
        self.stats = EngineStats()

        self._waiting: collections.deque[Sequence] = collections.deque()
        self._cond = threading.Condition()
        self._running: list[Sequence] = []
        self._cache: DynamicCache | None = None
        self._mask: torch.Tensor | None = None  # [B, T] long
        self._next_pos: torch.Tensor | None = None  # [B] long
        self._last_tokens: torch.Tensor | None = None  # [B] long
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="kbqa-batcher", daemon=True)
        self._thread.start()

    def _pad_id(self) -> int:
        for candidate in (self.tokenizer.pad_token_id, self.tokenizer.eos_token_id, 0):
            if candidate is not None:
                return int(candidate)
        return 0

    # -- public API (any thread) --------------------------------------------------------------------------------
    def submit(self, seq: Sequence) -> None:
        """Queue ``seq``; raises :class:`Overloaded` when the waiting queue is full."""
        seq.detokenizer = IncrementalDetokenizer(self.tokenizer, seq.prompt_ids)
        seq.stops = StopStringMatcher(seq.params.stop)
        if seq.params.seed is not None:
            seq.generator = torch.Generator(device=self.device).manual_seed(seq.params.seed)
        with self._cond:
            if self._stopping:
                raise Overloaded("the worker is shutting down", retry_after=self.retry_after_s)
            if len(self._waiting) >= self.max_queue_size:
                raise Overloaded(
                    f"the worker's queue is full ({self.max_queue_size} waiting); retry shortly",
                    retry_after=self.retry_after_s,
                )
            self._waiting.append(seq)
            self._cond.notify()

    def queue_length(self) -> int:
        """Sequences running or waiting (the controller's load figure)."""
        with self._cond:
            return len(self._waiting) + len(self._running)

    def shutdown(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout)

    # -- scheduler thread ---------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._running and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    break
                arrivals = self._take_arrivals()
            try:
                self._step(arrivals)
            except Exception as exc:  # the thread must survive; every affected request gets the error
                log.exception("generation step failed")
                self._fail_all(arrivals, exc)
        self._fail_all([], RuntimeError("worker shutting down"))

    def _take_arrivals(self) -> list[Sequence]:
        room = self.max_batch_size - len(self._running)
        taken: list[Sequence] = []
        budget = self.max_prefill_tokens
        while self._waiting and len(taken) < room:
            seq = self._waiting[0]
            if seq.cancelled:
                self._waiting.popleft()
                continue
            if taken and len(seq.prompt_ids) > budget:
                break
            budget -= len(seq.prompt_ids)
            taken.append(self._waiting.popleft())
        return taken

    @torch.inference_mode()
    def _step(self, arrivals: list[Sequence]) -> None:
        self._drop([i for i, s in enumerate(self._running) if s.cancelled or s.finished])
        arrivals = [s for s in arrivals if not s.cancelled]
        if arrivals:
            self._prefill(arrivals)
        if self._running:
            self._decode()

    def _prefill(self, arrivals: list[Sequence]) -> None:
        length = max(len(s.prompt_ids) for s in arrivals)
        ids = torch.full((len(arrivals), length), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(arrivals), length), dtype=torch.long)
        for row, seq in enumerate(arrivals):
            n = len(seq.prompt_ids)
            ids[row, length - n :] = torch.tensor(seq.prompt_ids, dtype=torch.long)
            mask[row, length - n :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = DynamicCache()
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        self.stats.forward_calls += 1
        self.stats.prefill_calls += 1
        _zero_padding(cache, mask)
        tokens = choose_tokens(out.logits[:, -1, :].float(), [s.row_state() for s in arrivals])
        self._merge(arrivals, cache, mask, mask.sum(-1), torch.tensor(tokens, device=self.device))
        self._accept(list(range(len(self._running) - len(arrivals), len(self._running))), tokens)

    def _decode(self) -> None:
        assert self._cache is not None and self._mask is not None
        assert self._next_pos is not None and self._last_tokens is not None
        batch = len(self._running)
        mask = torch.cat([self._mask, torch.ones((batch, 1), dtype=torch.long, device=self.device)], dim=1)
        out = self.model(
            input_ids=self._last_tokens[:, None],
            attention_mask=mask,
            position_ids=self._next_pos[:, None],
            past_key_values=self._cache,
            use_cache=True,
            logits_to_keep=1,
        )
        self.stats.forward_calls += 1
        self.stats.decode_steps += 1
        self._mask = mask
        self._next_pos = self._next_pos + 1
        tokens = choose_tokens(out.logits[:, -1, :].float(), [s.row_state() for s in self._running])
        self._last_tokens = torch.tensor(tokens, device=self.device)
        self._accept(list(range(batch)), tokens)
        self._drop([i for i, s in enumerate(self._running) if s.finished or s.cancelled])

    # -- batch bookkeeping --------------------------------------------------------------------------------------
    def _merge(
        self,
        seqs: list[Sequence],
        cache: DynamicCache,
        mask: torch.Tensor,
        next_pos: torch.Tensor,
        last_tokens: torch.Tensor,
    ) -> None:
        if self._cache is None:
            self._cache, self._mask, self._next_pos, self._last_tokens = cache, mask, next_pos, last_tokens
        else:
            assert self._mask is not None and self._next_pos is not None and self._last_tokens is not None
            old_t, new_t = self._mask.shape[1], mask.shape[1]
            width = max(old_t, new_t)
            for old_layer, new_layer in zip(self._cache.layers, cache.layers, strict=True):
                old_layer.keys = torch.cat(
                    [_left_pad(old_layer.keys, width, -2), _left_pad(new_layer.keys, width, -2)], dim=0
                )
                old_layer.values = torch.cat(
                    [_left_pad(old_layer.values, width, -2), _left_pad(new_layer.values, width, -2)], dim=0
                )
            self._mask = torch.cat([_left_pad(self._mask, width, -1), _left_pad(mask, width, -1)], dim=0)
            self._next_pos = torch.cat([self._next_pos, next_pos])
            self._last_tokens = torch.cat([self._last_tokens, last_tokens])
        self._running.extend(seqs)
        self.stats.max_running = max(self.stats.max_running, len(self._running))

    def _drop(self, rows: list[int]) -> None:
        if not rows:
            return
        gone = set(rows)
        keep = [i for i in range(len(self._running)) if i not in gone]
        self._running = [self._running[i] for i in keep]
        if not keep:
            self._cache = self._mask = self._next_pos = self._last_tokens = None
            return
        assert self._cache is not None and self._mask is not None
        assert self._next_pos is not None and self._last_tokens is not None
        index = torch.tensor(keep, device=self.device)
        mask = self._mask.index_select(0, index)
        # Columns that are padding in every remaining row carry nothing: cut them off.
        first = int(mask.any(dim=0).long().argmax())
        for layer in self._cache.layers:
            layer.keys = layer.keys.index_select(0, index)[..., first:, :]
            layer.values = layer.values.index_select(0, index)[..., first:, :]
        self._mask = mask[:, first:]
        self._next_pos = self._next_pos.index_select(0, index)
        self._last_tokens = self._last_tokens.index_select(0, index)

    def _accept(self, rows: list[int], tokens: list[int]) -> None:
        """Record one new token per row, emit text, and mark rows that are done."""
        for row, token in zip(rows, tokens, strict=True):
            seq = self._running[row]
            if seq.cancelled:
                continue
            seq.output_ids.append(token)
            self.stats.tokens_generated += 1
            reason: FinishReason | None = None
            assert seq.detokenizer is not None and seq.stops is not None
            if not seq.params.ignore_eos and (token in self.eos_token_ids or token in seq.params.stop_token_ids):
                reason, text = "stop", _flush(seq)
            else:
                text, hit = seq.stops.feed(seq.detokenizer.push(token))
                if hit:
                    reason = "stop"
                elif (
                    len(seq.output_ids) >= seq.max_new_tokens
                    or len(seq.prompt_ids) + len(seq.output_ids) >= self.context_length
                ):
                    reason = "length"
                    text += _flush(seq)
            if reason is None:
                if text:
                    seq.sink(GenerateEvent(text=text))
                continue
            self._finish(seq, reason, text)

    def _finish(self, seq: Sequence, reason: FinishReason, text: str = "") -> None:
        seq.finished = True
        prompt, completion = len(seq.prompt_ids), len(seq.output_ids)
        usage = Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)
        seq.sink(GenerateEvent(text=text, finish_reason=reason, usage=usage))

    def _fail_all(self, extra: list[Sequence], exc: BaseException) -> None:
        with self._cond:
            victims = [*self._running, *extra, *(self._waiting if self._stopping else [])]
            if self._stopping:
                self._waiting.clear()
        self._running = []
        self._cache = self._mask = self._next_pos = self._last_tokens = None
        for seq in victims:
            if not seq.finished:
                seq.finished = True
                seq.sink(_error_event(exc))


def _error_event(exc: BaseException) -> GenerateEvent:
    err = exc if isinstance(exc, LLMError) else InternalError(f"generation failed: {type(exc).__name__}: {exc}")
    body = err.to_envelope()["error"]
    return GenerateEvent(error=body, status=err.status_code)


def _flush(seq: Sequence) -> str:
    """Text held back when a sequence ends without a stop string: an unfinished stop-string start is real output."""
    assert seq.detokenizer is not None and seq.stops is not None
    tail, hit = seq.stops.feed(seq.detokenizer.flush())
    return tail if hit else tail + seq.stops.flush()


def _left_pad(t: torch.Tensor, width: int, dim: int) -> torch.Tensor:
    missing = width - t.shape[dim]
    if missing <= 0:
        return t
    shape = list(t.shape)
    shape[dim] = missing
    return torch.cat([torch.zeros(shape, dtype=t.dtype, device=t.device), t], dim=dim)


def _zero_padding(cache: DynamicCache, mask: torch.Tensor) -> None:
    """Pad positions may hold NaN (a fully masked attention row); masked NaN still poisons a matmul, so zero them."""
    keep = mask.bool()[:, None, :, None]
    for layer in cache.layers:
        layer.keys = torch.where(keep, layer.keys, 0)
        layer.values = torch.where(keep, layer.values, 0)


def wait_until_idle(batcher: ContinuousBatcher, timeout: float = 10.0) -> bool:
    """For tests and shutdown: True once nothing is running or waiting."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if batcher.queue_length() == 0:
            return True
        time.sleep(0.01)
    return False
