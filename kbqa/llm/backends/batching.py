"""Continuous batching: the scheduler shared by every generating backend.

One scheduler thread owns the model. Between two decode steps it drops finished and cancelled sequences, admits the
requests that arrived meanwhile, and then runs *one* model step for every running sequence, which is where the
throughput over FastChat's one-request-at-a-time worker comes from. How a step runs (KV-cache layout, prefill) is
the engine's business: :class:`ContinuousBatcher` subclasses implement ``_step`` and ``_release_all``; choosing
tokens, text deltas, stop strings, limits, cancellation and errors live here, once.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from kbqa.llm.backends.sampling import RowState
from kbqa.llm.backends.text_stream import IncrementalDetokenizer, StopStringMatcher
from kbqa.llm.errors import InternalError, LLMError, Overloaded
from kbqa.llm.protocol import FinishReason, GenerateEvent, SamplingParams, TokenLogprob, TopLogprob, Usage

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
    logprobs: list[TokenLogprob] = field(default_factory=list)  # chosen tokens whose text is not sent yet

    def cancel(self) -> None:
        # A plain attribute write is atomic under the GIL; the scheduler reads it between steps.
        self.cancelled = True

    def row_state(self) -> RowState:
        return RowState(self.params, self.prompt_ids, self.output_ids, self.generator)


class ContinuousBatcher(ABC):
    """Runs generation for many sequences at once on one model."""

    def __init__(
        self,
        tokenizer: Any,
        *,
        eos_token_ids: set[int],
        context_length: int,
        max_batch_size: int = 32,
        max_queue_size: int = 256,
        max_prefill_tokens: int = 4096,
        retry_after_s: int = 1,
    ) -> None:
        self.tokenizer = tokenizer
        self.eos_token_ids = eos_token_ids
        self.context_length = context_length
        self.max_batch_size = max_batch_size
        self.max_queue_size = max_queue_size
        self.max_prefill_tokens = max_prefill_tokens
        self.retry_after_s = retry_after_s
        self.stats = EngineStats()

        self._waiting: collections.deque[Sequence] = collections.deque()
        self._cond = threading.Condition()
        self._running: list[Sequence] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="kbqa-batcher", daemon=True)

    def start(self) -> None:
        """Start the scheduler thread; subclasses call it once their engine state exists."""
        self._thread.start()

    # -- public API (any thread) --------------------------------------------------------------------------------
    def submit(self, seq: Sequence) -> None:
        """Queue ``seq``; raises :class:`Overloaded` when the waiting queue is full."""
        seq.detokenizer = IncrementalDetokenizer(self.tokenizer, seq.prompt_ids)
        seq.stops = StopStringMatcher(seq.params.stop)
        if seq.params.seed is not None:
            seq.generator = torch.Generator(device=self.sampling_device).manual_seed(seq.params.seed)
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

    @property
    def sampling_device(self) -> torch.device:
        """Where logits are sampled (and seeded generators live)."""
        return torch.device("cpu")

    def load(self) -> tuple[int, int]:
        """Sequences (running, waiting)."""
        with self._cond:
            return len(self._running), len(self._waiting)

    def kv_cache_bytes(self) -> int | None:
        """Memory the engine holds for KV caches, when it knows."""
        return None

    def queue_length(self) -> int:
        """Sequences running or waiting (the controller's load figure)."""
        with self._cond:
            return len(self._waiting) + len(self._running)

    def is_running(self) -> bool:
        return self._thread.is_alive()

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
            if not self._has_room_for(seq, taken):
                break
            budget -= len(seq.prompt_ids)
            taken.append(self._waiting.popleft())
        return taken

    def _has_room_for(self, seq: Sequence, taken: list[Sequence]) -> bool:
        """Whether the engine can hold ``seq`` beside the running rows and ``taken``; it waits (in order) if not."""
        return True

    @abstractmethod
    def _step(self, arrivals: list[Sequence]) -> None:
        """One scheduler step: drop finished rows, admit ``arrivals``, decode one token for every running row
        (calling :meth:`_accept` with the chosen tokens)."""

    @abstractmethod
    def _release_all(self) -> None:
        """Forget every running row's model state (after a failed step or at shutdown)."""

    def _accept(self, rows: list[int], tokens: list[int], logits: torch.Tensor | None = None) -> None:
        """Record one new token per row, emit text, and mark rows that are done. ``logits`` [len(rows), vocab], the
        distribution each token was chosen from, gives the logprobs of rows that ask for them."""
        for i, (row, token) in enumerate(zip(rows, tokens, strict=True)):
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
                if seq.params.logprobs is not None and logits is not None:
                    seq.logprobs.append(self._token_logprob(logits[i], token, seq.params.logprobs))
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
                    seq.sink(GenerateEvent(text=text, logprobs=_take_logprobs(seq)))
                continue
            self._finish(seq, reason, text)

    def _finish(self, seq: Sequence, reason: FinishReason, text: str = "") -> None:
        seq.finished = True
        prompt, completion = len(seq.prompt_ids), len(seq.output_ids)
        usage = Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)
        seq.sink(GenerateEvent(text=text, logprobs=_take_logprobs(seq), finish_reason=reason, usage=usage))

    def _token_logprob(self, logits: torch.Tensor, token: int, top: int) -> TokenLogprob:
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        alternatives: list[TopLogprob] = []
        if top:
            values, ids = torch.topk(logprobs, top)
            for value, alt in zip(values.tolist(), ids.tolist(), strict=True):
                text = self._token_text(alt)
                alternatives.append(TopLogprob(token=text, logprob=value, bytes=list(text.encode())))
        text = self._token_text(token)
        return TokenLogprob(
            token=text, logprob=float(logprobs[token]), bytes=list(text.encode()), top_logprobs=alternatives
        )

    def _token_text(self, token: int) -> str:
        return str(self.tokenizer.decode([token], skip_special_tokens=False, clean_up_tokenization_spaces=False))

    def _fail_all(self, extra: list[Sequence], exc: BaseException) -> None:
        with self._cond:
            victims = [*self._running, *extra, *(self._waiting if self._stopping else [])]
            if self._stopping:
                self._waiting.clear()
        self._running = []
        self._release_all()
        for seq in victims:
            if not seq.finished:
                seq.finished = True
                seq.sink(_error_event(exc))


def _error_event(exc: BaseException) -> GenerateEvent:
    err = exc if isinstance(exc, LLMError) else InternalError(f"generation failed: {type(exc).__name__}: {exc}")
    body = err.to_envelope()["error"]
    return GenerateEvent(error=body, status=err.status_code)


def _take_logprobs(seq: Sequence) -> list[TokenLogprob] | None:
    """The logprobs of tokens whose text goes out now (text held back for a stop string keeps them waiting)."""
    if seq.params.logprobs is None:
        return None
    taken, seq.logprobs = seq.logprobs, []
    return taken


def _flush(seq: Sequence) -> str:
    """Text held back when a sequence ends without a stop string: an unfinished stop-string start is real output."""
    assert seq.detokenizer is not None and seq.stops is not None
    tail, hit = seq.stops.feed(seq.detokenizer.flush())
    return tail if hit else tail + seq.stops.flush()


def wait_until_idle(batcher: ContinuousBatcher, timeout: float = 10.0) -> bool:
    """For tests and shutdown: True once nothing is running or waiting."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if batcher.queue_length() == 0:
            return True
        time.sleep(0.01)
    return False
