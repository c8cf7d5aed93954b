"""OpenAI semantics on top of the workers: chat and text completions (stream and not), embeddings, models.

The HTTP layer (:mod:`kbqa.llm.openai_server`) only parses requests and hands back what these functions return.
Streams here yield ready-to-send SSE frames: the role chunk first, content deltas, exactly one finish chunk per
choice, the usage chunk when ``stream_options.include_usage`` asks for it, then ``data: [DONE]``. A failure after
the headers went out becomes an ``{"error": ...}`` event followed by ``[DONE]``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import math
import struct
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import anyio

from kbqa.llm.dispatch import WorkerPool, WorkerStream
from kbqa.llm.errors import InvalidRequest, LLMError, error_from_envelope
from kbqa.llm.http_errors import as_llm_error
from kbqa.llm.protocol import (
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessage,
    ChoiceLogprobs,
    ChunkDelta,
    Completion,
    CompletionChoice,
    CompletionRequest,
    EmbeddingData,
    EmbeddingRequest,
    EmbeddingResponse,
    EmbeddingUsage,
    GenerateEvent,
    GenerateRequest,
    GenerateResult,
    ModelCard,
    ModelList,
    ResponseMessage,
    TokenLogprob,
    Usage,
    WorkerMessage,
    new_id,
)
from kbqa.llm.token_arrays import decode_token_arrays

log = logging.getLogger(__name__)

KEEPALIVE_S = 15.0
DONE = "data: [DONE]\n\n"


def sse(payload: str) -> str:
    return f"data: {payload}\n\n"


def to_worker_messages(messages: list[ChatMessage]) -> list[WorkerMessage]:
    out: list[WorkerMessage] = []
    for m in messages:
        # `developer` is OpenAI's new name for `system`; chat templates only know the old one.
        role = "system" if m.role == "developer" else m.role
        out.append(
            WorkerMessage(
                role=role, content=m.text(), name=m.name, tool_calls=m.tool_calls, tool_call_id=m.tool_call_id
            )
        )
    return out


def _sum_usage(results: list[Usage]) -> Usage:
    # n choices share one prompt: OpenAI counts its tokens once.
    prompt = results[0].prompt_tokens if results else 0
    completion = sum(u.completion_tokens for u in results)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


class ModelService:
    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool

    async def list(self) -> ModelList:
        return ModelList(data=[ModelCard(id=m.id) for m in await self.pool.models(fresh=True)])

    async def get(self, model_id: str) -> ModelCard:
        return ModelCard(id=(await self.pool.model(model_id)).id)


async def _require_kind(pool: WorkerPool, model: str, kind: str) -> None:
    entry = await pool.model(model)
    if entry.kind != kind:
        what = "an embedding model" if entry.kind == "embedding" else "a chat model"
        raise InvalidRequest(f"{model!r} is {what}; it cannot serve this route", param="model")


@dataclass
class _ChoiceEvent:
    index: int
    event: GenerateEvent | None
    error: LLMError | None = None


async def _merge_choices(streams: list[WorkerStream]) -> AsyncIterator[_ChoiceEvent]:
    """Events of all choices as they come (FastChat sent choice 0 entirely before choice 1)."""
    queue: asyncio.Queue[_ChoiceEvent] = asyncio.Queue()

    async def pump(index: int, stream: WorkerStream) -> None:
        try:
            while True:
                event = await stream.next_event()
                await queue.put(_ChoiceEvent(index, event))
                if event.finish_reason is not None or event.error is not None:
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await queue.put(_ChoiceEvent(index, None, as_llm_error(exc)))

    tasks = [asyncio.create_task(pump(i, s)) for i, s in enumerate(streams)]
    open_choices = len(streams)
    try:
        while open_choices:
            try:
                item = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                yield _ChoiceEvent(-1, None)
                continue
            if item.error is not None or item.event is None or item.event.error is not None:
                yield item
                return
            if item.event.finish_reason is not None:
                open_choices -= 1
            yield item
    finally:
        for task in tasks:
            task.cancel()
        await _close_all(streams, tasks)


async def _close_all(streams: list[WorkerStream], tasks: list[asyncio.Task[None]] | None = None) -> None:
    """Close worker connections even while being cancelled.

    Starlette cancels a stream's task when its client disconnects, with anyio's level-triggered cancellation: every
    later ``await`` in the scope is cancelled too, so unshielded cleanup would never close the worker connection and
    the worker would generate on for nobody.
    """
    with anyio.CancelScope(shield=True):
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for stream in streams:
            await stream.aclose()


def _event_error(item: _ChoiceEvent) -> LLMError:
    if item.error is not None:
        return item.error
    assert item.event is not None and item.event.error is not None
    return error_from_envelope(item.event.status or 500, {"error": item.event.error.model_dump()})


async def _open_all(pool: WorkerPool, requests: list[GenerateRequest]) -> list[WorkerStream]:
    streams: list[WorkerStream] = []
    try:
        for request in requests:
            streams.append(await pool.open_stream(request))
    except BaseException:
        for stream in streams:
            await stream.aclose()
        raise
    return streams


async def _run_stream(
    streams: list[WorkerStream],
    frame: Callable[[int, str | None, str | None, list[TokenLogprob] | None], str],
    usage_frame: Callable[[Usage], str] | None,
) -> AsyncIterator[str]:
    usages: list[Usage] = []
    try:
        async with contextlib.aclosing(_merge_choices(streams)) as merged:
            async for item in merged:
                if item.index < 0:
                    yield ": keep-alive\n\n"
                    continue
                if item.error is not None or item.event is None or item.event.error is not None:
                    yield sse(json.dumps(_event_error(item).to_envelope(), ensure_ascii=False))
                    yield DONE
                    return
                event = item.event
                if event.finish_reason is None:
                    if event.text or event.logprobs:
                        yield frame(item.index, event.text, None, event.logprobs)
                    continue
                if event.usage is not None:
                    usages.append(event.usage)
                yield frame(item.index, event.text or None, event.finish_reason, event.logprobs)
    except Exception as exc:
        yield sse(json.dumps(as_llm_error(exc).to_envelope(), ensure_ascii=False))
        yield DONE
        return
    if usage_frame is not None:
        yield usage_frame(_sum_usage(usages))
    yield DONE


class ChatService:
    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool

    def _requests(self, body: ChatCompletionRequest) -> list[GenerateRequest]:
        messages = to_worker_messages(body.messages)
        limit = body.completion_limit()
        logprobs = body.logprobs_asked()
        return [
            GenerateRequest(model=body.model, messages=messages, params=body.sampling(limit, i, logprobs))
            for i in range(body.n)
        ]

    async def complete(self, body: ChatCompletionRequest) -> ChatCompletion:
        await _require_kind(self.pool, body.model, "chat")
        results: list[GenerateResult] = await asyncio.gather(*(self.pool.generate(r) for r in self._requests(body)))
        return ChatCompletion(
            id=new_id("chatcmpl"),
            model=body.model,
            choices=[
                ChatChoice(
                    index=i,
                    message=ResponseMessage(content=r.text),
                    logprobs=None if r.logprobs is None else ChoiceLogprobs(content=r.logprobs),
                    finish_reason=r.finish_reason,
                )
                for i, r in enumerate(results)
            ],
            usage=_sum_usage([r.usage for r in results]),
        )

    async def stream(self, body: ChatCompletionRequest) -> AsyncIterator[str]:
        """Opens the worker streams now (errors raise with a real status) and returns the SSE frames."""
        await _require_kind(self.pool, body.model, "chat")
        streams = await _open_all(self.pool, self._requests(body))
        chunk_id, created = new_id("chatcmpl"), int(time.time())

        def chunk(choices: list[ChatChunkChoice], usage: Usage | None = None) -> str:
            c = ChatCompletionChunk(id=chunk_id, created=created, model=body.model, choices=choices, usage=usage)
            return sse(c.model_dump_json())

        def frame(index: int, text: str | None, finish: str | None, logprobs: list[TokenLogprob] | None) -> str:
            choice = ChatChunkChoice(
                index=index,
                delta=ChunkDelta(content=text),
                logprobs=None if logprobs is None else ChoiceLogprobs(content=logprobs),
                finish_reason=finish,  # type: ignore[arg-type]
            )
            return chunk([choice])

        def usage_frame(usage: Usage) -> str:
            return chunk([], usage)

        async def frames() -> AsyncIterator[str]:
            try:
                for i in range(body.n):
                    yield chunk([ChatChunkChoice(index=i, delta=ChunkDelta(role="assistant", content=""))])
                async for f in _run_stream(streams, frame, usage_frame if body.include_usage() else None):
                    yield f
            finally:
                await _close_all(streams)

        return frames()


class CompletionService:
    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool

    def _requests(self, body: CompletionRequest) -> list[GenerateRequest]:
        out: list[GenerateRequest] = []
        for prompt in body.prompts():
            for i in range(body.n):
                params = body.sampling(body.max_tokens, i)
                if isinstance(prompt, str):
                    out.append(GenerateRequest(model=body.model, prompt=prompt, params=params, echo=body.echo))
                else:
                    out.append(
                        GenerateRequest(model=body.model, prompt_token_ids=prompt, params=params, echo=body.echo)
                    )
        return out

    async def complete(self, body: CompletionRequest) -> Completion:
        await _require_kind(self.pool, body.model, "chat")
        requests = self._requests(body)
        results: list[GenerateResult] = await asyncio.gather(*(self.pool.generate(r) for r in requests))
        # Several prompts: each has its own prompt tokens; n choices of one prompt share theirs.
        prompt_tokens = sum(results[i].usage.prompt_tokens for i in range(0, len(results), body.n))
        completion_tokens = sum(r.usage.completion_tokens for r in results)
        return Completion(
            id=new_id("cmpl"),
            model=body.model,
            choices=[
                CompletionChoice(index=i, text=r.text, finish_reason=r.finish_reason) for i, r in enumerate(results)
            ],
            usage=Usage(
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                total_tokens=prompt_tokens + completion_tokens,
            ),
        )

    async def stream(self, body: CompletionRequest) -> AsyncIterator[str]:
        await _require_kind(self.pool, body.model, "chat")
        streams = await _open_all(self.pool, self._requests(body))
        chunk_id, created = new_id("cmpl"), int(time.time())

        def frame(index: int, text: str | None, finish: str | None, _logprobs: list[TokenLogprob] | None) -> str:
            choice = CompletionChoice(index=index, text=text or "", finish_reason=finish)  # type: ignore[arg-type]
            return sse(Completion(id=chunk_id, created=created, model=body.model, choices=[choice]).model_dump_json())

        def usage_frame(usage: Usage) -> str:
            return sse(
                Completion(id=chunk_id, created=created, model=body.model, choices=[], usage=usage).model_dump_json()
            )

        async def frames() -> AsyncIterator[str]:
            try:
                async for f in _run_stream(streams, frame, usage_frame if body.include_usage() else None):
                    yield f
            finally:
                await _close_all(streams)

        return frames()


# Texts per worker call: big inputs are spread over workers and keep each call's latency bounded.
EMBED_CHUNK = 64


def _encode_vector(vector: list[float], dimensions: int | None, encoding: str) -> list[float] | str:
    if dimensions is not None:
        vector = vector[:dimensions]
        norm = math.sqrt(sum(x * x for x in vector)) or 1.0
        vector = [x / norm for x in vector]
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return vector


class EmbeddingService:
    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool

    async def embed(self, body: EmbeddingRequest) -> EmbeddingResponse:
        await _require_kind(self.pool, body.model, "embedding")
        arrays = body.token_arrays()
        # Decoding is CPU work (and the first call loads the 1.7 MB ranks file): off the event loop.
        texts = body.texts() if arrays is None else await asyncio.to_thread(decode_token_arrays, body.model, arrays)
        batches = [texts[i : i + EMBED_CHUNK] for i in range(0, len(texts), EMBED_CHUNK)]
        results = await asyncio.gather(*(self.pool.embed(body.model, b) for b in batches))
        vectors = [v for r in results for v in r.embeddings]
        if body.dimensions is not None and vectors and body.dimensions > len(vectors[0]):
            raise InvalidRequest(f"dimensions must be at most {len(vectors[0])} for {body.model!r}", param="dimensions")
        tokens = sum(r.token_count for r in results)
        return EmbeddingResponse(
            data=[
                EmbeddingData(index=i, embedding=_encode_vector(v, body.dimensions, body.encoding_format))
                for i, v in enumerate(vectors)
            ],
            model=body.model,
            usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens),
        )
