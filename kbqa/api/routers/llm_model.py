"""/llm_model/*: which LLMs run and how they are configured. Only the configured controller or endpoint is asked:
Chatchat let the client name the controller address (server-side request forgery)."""

from __future__ import annotations

import logging
from typing import Any

import httpx
from fastapi import APIRouter

from kbqa.api.context import AppContext, Ctx
from kbqa.api.errors import ApiError
from kbqa.api.schemas import (
    NOT_IMPLEMENTED,
    BaseResponse,
    ListConfigModelsRequest,
    ListRunningModelsRequest,
    ModelConfigRequest,
)
from kbqa.llm.errors import LLMError

log = logging.getLogger(__name__)
router = APIRouter(prefix="/llm_model", tags=["LLM Model Management"])


def _endpoint_config(ctx: AppContext) -> dict[str, Any]:
    client = ctx.settings.llm.client
    # No api_key: Chatchat stripped keys and secrets from model configs it returned, so do we.
    return {"api_base_url": client.base_url, "temperature": client.temperature, "max_tokens": client.max_tokens}


def _local_config(ctx: AppContext) -> dict[str, dict[str, Any]]:
    worker = ctx.settings.llm.worker
    names = worker.model_names or [ctx.settings.llm.client.model]
    cfg = {
        "model_path": worker.model_path or "(bundled SmolLM2-135M-Instruct)",
        "device": worker.device,
        "dtype": worker.dtype,
        "host": worker.host,
        "port": worker.port,
        "max_batch_size": worker.max_batch_size,
    }
    return {name: dict(cfg) for name in names}


def _is_llm(ctx: AppContext, name: str, kind: str | None) -> bool:
    """Chatchat's running models are LLMs: its web UI takes its default chat model from them. The endpoint's
    /models has no kind: the embedding models configured here are the ones it serves in-process."""
    if kind is not None:
        return kind != "embedding"
    return name != ctx.settings.embedding.model and name not in ctx.settings.embedding.models


async def _running(ctx: AppContext) -> dict[str, dict[str, Any]]:
    """The running LLMs by name (embedding models left out), from the controller, else from the endpoint."""
    controller = ctx.settings.llm.openai_server.controller_address.rstrip("/")
    try:
        async with httpx.AsyncClient(timeout=ctx.settings.api.controller_timeout_s) as http:
            r = await http.post(f"{controller}/list_models_detail")
            r.raise_for_status()
            return {
                m["id"]: {
                    **_endpoint_config(ctx),
                    "kind": m.get("kind"),
                    "workers": m.get("workers"),
                    "context_length": m.get("context_length"),
                    "source": "controller",
                }
                for m in r.json().get("models", [])
                if _is_llm(ctx, m["id"], m.get("kind"))
            }
    except (httpx.HTTPError, ValueError, KeyError):
        log.info("controller %s not reachable; asking the endpoint's /models instead", controller)
    try:
        models = await ctx.llm.models()
    except (LLMError, httpx.HTTPError) as exc:
        detail = exc.message if isinstance(exc, LLMError) else type(exc).__name__
        raise ApiError(503, f"无法获取运行中的模型 (no LLM endpoint reachable): {detail}", code=500) from exc
    return {m: {**_endpoint_config(ctx), "source": "endpoint"} for m in models if _is_llm(ctx, m, None)}


@router.post("/list_running_models", summary="列出当前已加载的模型 (running models)", response_model=BaseResponse)
async def list_running_models(ctx: Ctx, req: ListRunningModelsRequest | None = None) -> BaseResponse:
    if req is not None and req.controller_address:
        log.warning("ignoring client-supplied controller_address %r", req.controller_address[:200])
    return BaseResponse(data=await _running(ctx))


@router.post("/list_models", summary="运行中的模型名称 (running model names)", response_model=BaseResponse)
async def list_models(ctx: Ctx, req: ListRunningModelsRequest | None = None) -> BaseResponse:
    """Chatchat 0.2's earlier ``list_llm_models``, still called by 0.2.10's tests/api/test_llm_api.py: the names of
    the running models as a list (``list_running_models`` maps them to their configurations)."""
    if req is not None and req.controller_address:
        log.warning("ignoring client-supplied controller_address %r", req.controller_address[:200])
    return BaseResponse(data=list(await _running(ctx)))


@router.post("/list_config_models", summary="列出配置的模型 (configured models)", response_model=BaseResponse)
async def list_config_models(ctx: Ctx, req: ListConfigModelsRequest | None = None) -> BaseResponse:
    types = (req or ListConfigModelsRequest()).types
    data: dict[str, dict[str, Any]] = {}
    if "local" in types or "worker" in types:
        data["local"] = _local_config(ctx)
    if "online" in types:
        data["online"] = {ctx.settings.llm.client.model: _endpoint_config(ctx)}
    return BaseResponse(data=data)


@router.post("/get_model_config", summary="获取模型配置 (one model's configuration)", response_model=BaseResponse)
async def get_model_config(req: ModelConfigRequest, ctx: Ctx) -> BaseResponse:
    local = _local_config(ctx)
    if req.model_name in local:
        return BaseResponse(data={**local[req.model_name], **_endpoint_config(ctx)})
    if req.model_name == ctx.settings.llm.client.model:
        return BaseResponse(data=_endpoint_config(ctx))
    return BaseResponse(data={})


@router.post("/stop", summary="停止模型 (not supported: 501)", response_model=BaseResponse, responses=NOT_IMPLEMENTED)
async def stop_llm_model() -> BaseResponse:
    raise ApiError(501, "不支持通过 API 停止模型 (stop workers with the launcher)")


@router.post("/change", summary="切换模型 (not supported: 501)", response_model=BaseResponse, responses=NOT_IMPLEMENTED)
@router.post(
    "/change_model",
    summary="切换模型 (the name test_llm_api.py uses; not supported: 501)",
    response_model=BaseResponse,
    responses=NOT_IMPLEMENTED,
)
async def change_llm_model() -> BaseResponse:
    raise ApiError(501, "不支持通过 API 切换模型 (start another worker with the launcher)")
