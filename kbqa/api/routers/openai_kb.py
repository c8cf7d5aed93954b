"""A knowledge base as an OpenAI model: ``POST /kb/v1/chat/completions`` with ``model`` = a KB name.

Any OpenAI client pointed at ``http://host:7861/kb/v1`` asks a KB and gets the answer plus ``sources`` (an extra
field on the response, and on the last stream chunk). The prefix keeps it apart from the LLM server's own ``/v1``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from kbqa.api import names
from kbqa.api.auth import may_use
from kbqa.api.context import Ctx
from kbqa.api.errors import OPENAI_PREFIX
from kbqa.api.schemas import KBCompletionRequest, sse_responses
from kbqa.chat.kb_chat import Grounded, KBChat, LLMOptions
from kbqa.errors import KBNotFound, KBQAError

router = APIRouter(prefix=OPENAI_PREFIX, tags=["Knowledge base as an OpenAI model"])
CHAT_ROUTE = OPENAI_PREFIX + "/chat/completions"


def _is_token(chunk: bytes) -> bool:
    return b'"delta": {"content": ' in chunk  # not the opening role chunk, whose content is empty


@router.get("/models", summary="Knowledge bases, listed as OpenAI models")
async def models(request: Request, ctx: Ctx) -> dict[str, Any]:
    kbs = [kb for kb in await run_in_threadpool(ctx.service.list_kbs) if may_use(request, kb.name)]
    return {
        "object": "list",
        "data": [
            {"id": kb.name, "object": "model", "created": int(kb.created_at.timestamp()), "owned_by": "kbqa"}
            for kb in kbs
        ],
    }


def _chunk(cid: str, created: int, model: str, delta: dict, finish: str | None, **extra: Any) -> bytes:
    payload = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()


async def _stream(
    kb_chat: KBChat, grounded: Grounded, options: LLMOptions, cid: str, created: int, model: str
) -> AsyncIterator[bytes]:
    yield _chunk(cid, created, model, {"role": "assistant", "content": ""}, None)
    async for token in kb_chat.stream(grounded, options):
        yield _chunk(cid, created, model, {"content": token}, None)
    yield _chunk(cid, created, model, {}, "stop", sources=grounded.sources)
    yield b"data: [DONE]\n\n"


@router.post(
    "/chat/completions",
    summary="Ask a knowledge base (model = KB name); answer with sources",
    responses=sse_responses(
        "stream=false: a chat.completion object; stream=true: SSE of chat.completion.chunk objects"
    ),
)
async def chat_completions(req: KBCompletionRequest, request: Request, ctx: Ctx):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    kb = names.kb_name(request, req.model)
    if not await run_in_threadpool(ctx.service.exists, kb):
        raise KBNotFound(f"knowledge base {kb} not found")
    turns = [{"role": m.role, "content": m.content or ""} for m in req.messages if m.role in ("user", "assistant")]
    system = [{"role": "system", "content": m.content or ""} for m in req.messages if m.role == "system"]
    question = next((t["content"] for t in reversed(turns) if t["role"] == "user"), "")
    history = turns[: max(0, len(turns) - 1)] if turns and turns[-1]["role"] == "user" else turns
    top_k = req.top_k or ctx.settings.kb.top_k
    threshold = ctx.settings.kb.score_threshold if req.score_threshold is None else req.score_threshold
    hits = await run_in_threadpool(ctx.kb_chat.retrieve, kb, question, history, top_k, threshold)
    grounded = ctx.kb_chat.ground(hits, question, [*system, *history], req.prompt_name, ctx.public_url(request))
    options = ctx.kb_chat.options(None, req.temperature, req.max_tokens)
    cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    if req.stream:
        stream = ctx.metrics.timed_answer(
            CHAT_ROUTE, started, _stream(ctx.kb_chat, grounded, options, cid, created, kb), _is_token
        )
        first = await anext(stream)  # the role chunk; the LLM is reached on the next one
        second = await anext(stream)  # an unreachable LLM fails here, before the 200 goes out

        async def body() -> AsyncIterator[bytes]:
            yield first
            yield second
            try:
                async for part in stream:
                    yield part
            except KBQAError as exc:  # after the 200: OpenAI's in-stream error event
                error = {"message": exc.message, "type": "server_error", "param": None, "code": exc.status_code}
                yield f"data: {json.dumps({'error': error}, ensure_ascii=False)}\n\n".encode()

        return StreamingResponse(body(), media_type="text/event-stream")
    answer = await ctx.kb_chat.complete(grounded, options)
    ctx.metrics.observe_answer(CHAT_ROUTE, started)
    return {
        "id": cid,
        "object": "chat.completion",
        "created": created,
        "model": kb,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
        "usage": None,
        "sources": grounded.sources,
    }
