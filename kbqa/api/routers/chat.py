"""/chat/*: LLM chat, knowledge-base chat, file chat, feedback; search-engine and agent chat answer 501."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from kbqa.api import names
from kbqa.api.context import AppContext, Ctx
from kbqa.api.errors import ApiError, body
from kbqa.api.schemas import (
    NOT_IMPLEMENTED,
    BaseResponse,
    ChatRequest,
    FeedbackRequest,
    FileChatRequest,
    KBChatRequest,
    sse_responses,
)
from kbqa.api.sse import prefetched, sse_response
from kbqa.chat.history import as_messages
from kbqa.chat.kb_chat import LLMOptions, chatchat_events, recorded_events

router = APIRouter(prefix="/chat", tags=["Chat"])

_SSE = sse_responses("SSE: data: {json}\\r\\n\\r\\n per event; stream=false: a single event")


def _options(req: ChatRequest) -> LLMOptions:
    return LLMOptions(req.model_name, req.temperature, req.max_tokens)


@router.post("/chat", summary="与llm模型对话 (chat with the LLM)", responses=_SSE)
async def chat(req: ChatRequest, ctx: Ctx):  # type: ignore[no-untyped-def]
    history = as_messages(req.history) if isinstance(req.history, list) else None
    history_len = req.history if isinstance(req.history, int) and req.history > 0 else req.history_len
    message_id, messages = await run_in_threadpool(
        ctx.llm_chat.prepare, req.query, req.conversation_id, history, history_len, req.prompt_name
    )
    events = await prefetched(ctx.llm_chat.events(message_id, messages, _options(req), req.stream))
    return sse_response(events, ctx.settings.api.sse_ping_s)


@router.post("/feedback", summary="返回llm模型对话评分 (rate an answer)", response_model=BaseResponse)
async def feedback(req: FeedbackRequest, ctx: Ctx) -> BaseResponse:
    await run_in_threadpool(ctx.records.feedback, req.message_id, req.score, req.reason)
    return BaseResponse(msg=f"已反馈聊天记录 {req.message_id}")


async def _recorded(
    ctx: AppContext, events: AsyncIterator[dict], chat_type: str, query: str, conversation_id: str, meta: dict
) -> AsyncIterator[dict]:
    message_id = await run_in_threadpool(ctx.records.add_message, chat_type, query, conversation_id, meta)
    return recorded_events(events, ctx.records, message_id)


@router.post("/knowledge_base_chat", summary="与知识库对话 (chat with a knowledge base)", responses=_SSE)
async def knowledge_base_chat(req: KBChatRequest, request: Request, ctx: Ctx):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    kb = names.kb_name(request, req.knowledge_base_name)
    if not await run_in_threadpool(ctx.service.exists, kb):
        return JSONResponse(body(404, f"未找到知识库 {kb}"), status_code=404)
    history = as_messages(req.history)
    kb_settings = ctx.settings.kb
    top_k = req.top_k or kb_settings.top_k
    threshold = kb_settings.score_threshold if req.score_threshold is None else req.score_threshold
    hits = await run_in_threadpool(ctx.kb_chat.retrieve, kb, req.query, history, top_k, threshold)
    grounded = ctx.kb_chat.ground(hits, req.query, history, req.prompt_name, ctx.public_url(request))
    options = ctx.kb_chat.options(req.model_name, req.temperature, req.max_tokens)
    events = chatchat_events(ctx.kb_chat, grounded, options, req.stream)
    events = ctx.metrics.timed_answer("/chat/knowledge_base_chat", started, events, lambda e: bool(e.get("answer")))
    if req.conversation_id:
        meta = {"knowledge_base_name": kb}
        events = await _recorded(ctx, events, "knowledge_base_chat", req.query, req.conversation_id, meta)
    return sse_response(await prefetched(events), ctx.settings.api.sse_ping_s)


@router.post("/file_chat", summary="文件对话 (chat with uploaded temporary files)", responses=_SSE)
async def file_chat(req: FileChatRequest, ctx: Ctx):  # type: ignore[no-untyped-def]
    if not ctx.temp_kbs.exists(req.knowledge_id):
        return JSONResponse(body(404, f"未找到临时知识库 {req.knowledge_id}，请先上传文件"), status_code=404)
    history = as_messages(req.history)
    kb_settings = ctx.settings.kb
    top_k = req.top_k or kb_settings.top_k
    threshold = kb_settings.score_threshold if req.score_threshold is None else req.score_threshold
    query = await run_in_threadpool(ctx.kb_chat.search_query, req.query, history)
    hits = await run_in_threadpool(ctx.temp_kbs.search, req.knowledge_id, query, top_k, threshold)
    # No download links: temporary files are not served (Chatchat's file chat had none either).
    grounded = ctx.kb_chat.ground(hits, req.query, history, req.prompt_name, None)
    options = ctx.kb_chat.options(req.model_name, req.temperature, req.max_tokens)
    events = chatchat_events(ctx.kb_chat, grounded, options, req.stream)
    if req.conversation_id:
        meta = {"knowledge_id": req.knowledge_id}
        events = await _recorded(ctx, events, "file_chat", req.query, req.conversation_id, meta)
    return sse_response(await prefetched(events), ctx.settings.api.sse_ping_s)


def _not_implemented(what: str) -> None:
    raise ApiError(501, f"{what} 暂未支持 (not implemented in kbqa yet); use /chat/knowledge_base_chat or /chat/chat")


@router.post(
    "/search_engine_chat",
    summary="与搜索引擎对话 (not implemented: 501)",
    response_model=BaseResponse,
    responses=NOT_IMPLEMENTED,
)
async def search_engine_chat() -> BaseResponse:
    _not_implemented("搜索引擎对话 search_engine_chat")
    raise AssertionError


@router.post(
    "/agent_chat", summary="与agent对话 (not implemented: 501)", response_model=BaseResponse, responses=NOT_IMPLEMENTED
)
async def agent_chat() -> BaseResponse:
    _not_implemented("Agent 对话 agent_chat")
    raise AssertionError
