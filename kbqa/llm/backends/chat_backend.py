"""What every generating backend shares: prompts from messages, limits, and streams over a continuous batcher.

A backend supplies a Hugging Face tokenizer (the same vocabulary as its weights) and a :class:`ContinuousBatcher`
for its engine; chat templates, token limits, context checks, echo and cancellation behave identically whichever
engine decodes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from kbqa.llm.backends.base import BackendStats, EventStream, ModelBackend
from kbqa.llm.backends.batching import ContinuousBatcher, Sequence
from kbqa.llm.errors import ContextOverflow, InvalidRequest
from kbqa.llm.protocol import (
    CountTokensRequest,
    GenerateEvent,
    GenerateRequest,
    ModelDetails,
    WorkerMessage,
)
from kbqa.llm.settings import WorkerSettings


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


class BatchedChatBackend(ModelBackend):
    """A chat model behind a continuous batcher; subclasses load the model and build the batcher."""

    def __init__(
        self,
        tokenizer: Any,
        batcher: ContinuousBatcher,
        settings: WorkerSettings,
        details: ModelDetails,
    ) -> None:
        self.tokenizer = tokenizer
        self.batcher = batcher
        self.settings = settings
        self.context_length = details.context_length
        self._details = details

    @property
    def details(self) -> ModelDetails:
        return self._details

    def stats(self) -> BackendStats:
        running, waiting = self.batcher.load()
        return BackendStats(running=running, waiting=waiting, kv_cache_bytes=self.batcher.kv_cache_bytes())

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
