"""Native routes Chatchat has none of: liveness, readiness, KB and file details, retrieval evaluation."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from kbqa.api import names
from kbqa.api.auth import may_use
from kbqa.api.context import AppContext, Ctx
from kbqa.api.errors import ApiError, body
from kbqa.api.schemas import (
    NAME_MAX,
    BaseResponse,
    EvaluateRequest,
    FileDetail,
    FileDetailsResponse,
    KBDetail,
    KBDetailsResponse,
)
from kbqa.errors import KBNotFound

router = APIRouter(tags=["Health"])


@router.get("/health", summary="Liveness: the process answers")
async def health() -> dict[str, str]:
    return {"status": "ok"}


def _ready(ctx: AppContext) -> dict[str, Any]:
    checks: dict[str, Any] = {}
    try:
        checks["knowledge_bases"] = len(ctx.service.list_kbs())
        checks["database"] = "ok"
    except Exception as exc:  # report, do not raise: this is the readiness probe
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        ctx.service.embedders.get(ctx.settings.embedding.model)
        checks["embedding_model"] = "ok"
    except Exception as exc:
        checks["embedding_model"] = f"error: {type(exc).__name__}"
    return checks


@router.get("/ready", summary="Readiness: database and embedding model usable (503 otherwise)")
async def ready(ctx: Ctx) -> JSONResponse:
    checks = await run_in_threadpool(_ready, ctx)
    ok = checks.get("database") == "ok" and checks.get("embedding_model") == "ok"
    status = 200 if ok else 503
    return JSONResponse(body(status, "ready" if ok else "not ready", checks), status_code=status)


@router.get(
    "/knowledge_base/list_kb_details",
    tags=["Knowledge Base Management"],
    summary="Knowledge bases with their description, vector store, embedding model and counts",
    response_model=KBDetailsResponse,
)
async def list_kb_details(request: Request, ctx: Ctx) -> KBDetailsResponse:
    # Chatchat's web UI read these from the server's database in-process; ours asks over HTTP like any client.
    kbs = await run_in_threadpool(ctx.service.list_kbs)
    return KBDetailsResponse(data=[KBDetail(**dataclasses.asdict(kb)) for kb in kbs if may_use(request, kb.name)])


@router.get(
    "/knowledge_base/list_file_details",
    tags=["Knowledge Base Management"],
    summary="A knowledge base's files with size, chunk count, status and error",
    response_model=FileDetailsResponse,
)
async def list_file_details(
    request: Request, ctx: Ctx, knowledge_base_name: str = Query(..., max_length=NAME_MAX, examples=["samples"])
) -> FileDetailsResponse:
    kb = names.kb_name(request, knowledge_base_name)
    files = await run_in_threadpool(ctx.service.list_files, kb)
    details = [FileDetail(**dataclasses.asdict(f)) for f in files]
    details += await run_in_threadpool(_unindexed, ctx, kb)
    return FileDetailsResponse(data=details)


def _unindexed(ctx: AppContext, kb: str) -> list[FileDetail]:
    """Files of the content folder the database does not know, as Chatchat's KB page listed them (in_db false)."""
    folder = ctx.service.folder(kb)
    rows = []
    for rel in ctx.service.files_not_in_db(kb):
        try:
            stat = folder.file_path(rel).stat()
        except OSError:  # deleted between the scan and now
            continue
        when = datetime.fromtimestamp(stat.st_mtime, UTC)
        rows.append(
            FileDetail(
                path=rel,
                ext=PurePosixPath(rel).suffix.lower(),
                size=stat.st_size,
                mtime=stat.st_mtime,
                loader="",
                splitter="",
                chunk_size=0,
                chunk_overlap=0,
                zh_title_enhance=False,
                custom_docs=False,
                chunk_count=0,
                status="not_indexed",
                error="",
                in_folder=True,
                in_db=False,
                created_at=when,
                updated_at=when,
            )
        )
    return rows


def _evaluate_available() -> bool:
    try:
        return importlib.util.find_spec("kbqa.retrieval.evaluate") is not None
    except ModuleNotFoundError:
        return False


@router.post(
    "/knowledge_base/evaluate",
    tags=["Knowledge Base Management"],
    summary="Run the retrieval evaluation of `kbqa eval` on a knowledge base",
    response_model=BaseResponse,
)
async def evaluate(req: EvaluateRequest, request: Request, ctx: Ctx) -> BaseResponse:
    kb = names.kb_name(request, req.knowledge_base_name)
    if not ctx.service.exists(kb):
        raise KBNotFound(f"knowledge base {kb} not found")
    if not _evaluate_available():
        raise ApiError(501, "检索评测不可用 (retrieval evaluation is not installed in this build)")
    from kbqa.retrieval.evaluate import evaluate_kb, parse_golden
    from kbqa.retrieval.retriever import Retriever

    # The same JSONL rows `kbqa eval` reads ({"query", "relevant_files" | "relevant_chunk_ids"}), as a JSON list.
    golden = parse_golden(json.dumps(row, ensure_ascii=False) for row in req.golden)
    retriever = Retriever(ctx.service, ctx.settings)
    modes = tuple(req.modes) if req.modes else ("dense", "keyword", "hybrid")
    result = await run_in_threadpool(evaluate_kb, retriever, kb, golden, modes)
    return BaseResponse(data=result)
