"""/server/* and /other/*: server configuration, prompt templates, embeddings."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from starlette.concurrency import run_in_threadpool

from kbqa.api.context import Ctx
from kbqa.api.errors import ApiError
from kbqa.api.schemas import NOT_IMPLEMENTED, BaseResponse, EmbedTextsRequest, PromptTemplateRequest
from kbqa.store.registry import available_types

router = APIRouter(tags=["Server State"])


@router.post("/server/configs", summary="获取服务器原始配置信息 (server configuration)")
async def get_server_configs(ctx: Ctx) -> dict[str, Any]:
    s = ctx.settings
    return {
        "DEFAULT_KNOWLEDGE_BASE": s.kb.default_kb,
        "DEFAULT_SEARCH_ENGINE": None,
        "DEFAULT_VS_TYPE": s.kb.default_vs_type,
        "CHUNK_SIZE": s.kb.chunk_size,
        "OVERLAP_SIZE": s.kb.chunk_overlap,
        "SCORE_THRESHOLD": s.kb.score_threshold,
        "VECTOR_SEARCH_TOP_K": s.kb.top_k,
        "SEARCH_ENGINE_TOP_K": 3,
        "ZH_TITLE_ENHANCE": s.kb.zh_title_enhance,
        "TEXT_SPLITTER_NAME": s.kb.text_splitter,
        "text_splitter_dict": {s.kb.text_splitter: {"source": "characters"}},
        "EMBEDDING_MODEL": s.embedding.model,
        # Not in Chatchat: the choices a client may offer when it creates a knowledge base.
        "EMBEDDING_MODELS": list(dict.fromkeys([s.embedding.model, *s.embedding.models])),
        "VS_TYPES": available_types(),
        "LLM_MODELS": [s.llm.client.model],
        "HISTORY_LEN": 3,
        "TEMPERATURE": s.llm.client.temperature,
        # Not in Chatchat: the default of knowledge-base and file chat, for a client offering a temperature control.
        "KB_CHAT_TEMPERATURE": s.api.kb_chat_temperature,
        "PROMPT_TEMPLATES": ctx.prompts.all(),
        "openai_api_address": s.llm.client.base_url,
        "api_address": f"http://{s.api.host}:{s.api.port}",
    }


@router.post("/server/list_search_engines", summary="获取服务器支持的搜索引擎 (none yet)", response_model=BaseResponse)
async def list_search_engines() -> BaseResponse:
    return BaseResponse(data=[])


@router.post("/server/get_prompt_template", summary="获取服务区配置的 prompt 模板 (a prompt template)")
async def get_prompt_template(ctx: Ctx, req: PromptTemplateRequest | None = None) -> str | None:
    req = req or PromptTemplateRequest()
    return ctx.prompts.get(req.type, req.name)


@router.post("/other/embed_texts", summary="将文本向量化 (embed texts)", response_model=BaseResponse)
async def embed_texts(req: EmbedTextsRequest, ctx: Ctx) -> BaseResponse:
    model = req.embed_model or ctx.settings.embedding.model
    if not req.texts:
        return BaseResponse(data=[])
    # Only configured names: a client-chosen folder path would make the server load arbitrary files.
    if not ctx.query_embedders.is_configured(model):
        raise ApiError(
            400,
            f"指定的模型 {model[:200]} 不支持 Embeddings 功能。",
            code=500,
            data={"detail": f"configured: {', '.join(ctx.query_embedders.names())}"},
        )
    # A configured model that fails to load is the server's fault: its EmbeddingModelError stays a 500.
    embedder = await run_in_threadpool(ctx.query_embedders.get, model)
    if req.to_query:
        vectors = [await run_in_threadpool(embedder.embed_query, t) for t in req.texts]
        return BaseResponse(data=[v.reshape(-1).tolist() for v in vectors])
    matrix = await run_in_threadpool(embedder.embed_documents, req.texts)
    return BaseResponse(data=matrix.tolist())


@router.post(
    "/other/completion",
    summary="LLM 补全 (not implemented: 501)",
    response_model=BaseResponse,
    responses=NOT_IMPLEMENTED,
)
async def completion() -> BaseResponse:
    raise ApiError(501, "暂未支持 /other/completion (not implemented); use /chat/chat")


@router.post(
    "/knowledge_base/kb_summary_api/{operation}",
    tags=["Knowledge Base Management"],
    summary="知识库摘要 (not implemented: 501)",
    response_model=BaseResponse,
    responses=NOT_IMPLEMENTED,
)
async def kb_summary(operation: Annotated[str, Path(max_length=64)]) -> BaseResponse:
    raise ApiError(501, f"暂未支持知识库摘要 {operation[:64]} (KB summaries are not implemented)")
