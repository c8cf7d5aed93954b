"""/knowledge_base/*: Chatchat 0.2.10's knowledge-base management routes, with validation on every name and path,
uploads streamed to disk, and ingestion run as background jobs (old clients still get the answer when it is done)."""

from __future__ import annotations

import asyncio
import json
import mimetypes
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from kbqa.api import names
from kbqa.api.auth import may_use
from kbqa.api.context import AppContext, Ctx
from kbqa.api.errors import ApiError, body
from kbqa.api.schemas import (
    ACCEPTED,
    CHUNK_SIZE_MAX,
    DOC_TEXT_MAX,
    NAME_MAX,
    PATH_MAX,
    BaseResponse,
    CreateKBRequest,
    DeleteDocsRequest,
    DeleteKBRequest,
    ListResponse,
    RecreateRequest,
    SearchDocsRequest,
    UpdateDocsByIdRequest,
    UpdateDocsRequest,
    UpdateInfoRequest,
    sse_responses,
)
from kbqa.api.sse import sse_response
from kbqa.errors import ChunkNotFound, KBNotFound, KBQAError
from kbqa.ingest.document import Document
from kbqa.jobs.ingest import ingest_job, recreate_job, summarize
from kbqa.jobs.manager import Job
from kbqa.knowledge.service import SearchHit
from kbqa.store.registry import requested_type

router = APIRouter(prefix="/knowledge_base", tags=["Knowledge Base Management"])

LIST_DOCS_SCORE = 3.0  # Chatchat's DocumentWithVSId default score for documents listed without a query


def _doc(hit: SearchHit) -> dict[str, Any]:
    chunk_id = str(hit.chunk_id)
    return {
        "page_content": hit.text,
        "metadata": {**hit.metadata, "source": hit.path, "id": chunk_id},
        "type": "Document",
        "id": chunk_id,
        "score": hit.distance,
        "relevance": hit.relevance,
    }


def _require_kb(ctx: AppContext, kb: str, paths: list[str] | None = None) -> None:
    """The KB must exist, and each path must resolve inside its content folder (a symlink there that points out
    makes the name unusable, even for routes that only touch the database)."""
    if not ctx.service.exists(kb):
        raise KBNotFound(f"knowledge base {kb} not found")
    folder = ctx.service.folder(kb)
    for rel in paths or ():
        folder.file_path(rel)


async def _wait(job: Job) -> Any:
    assert job.future is not None
    return await asyncio.wrap_future(job.future)


def _job_accepted(job: Job, failed: dict[str, str]) -> JSONResponse:
    data = {"job_id": job.id, "status_url": f"/jobs/{job.id}", "failed_files": failed}
    return JSONResponse(body(200, f"已提交后台任务 {job.id} (job queued)", data), status_code=202)


def _parse_custom_docs(raw: str | dict[str, Any] | None) -> dict[str, list[Document]]:
    """Chatchat's ``docs``: a JSON string (or object) ``{file name: [{page_content, metadata}, ...]}``."""
    if not raw:
        return {}
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError as exc:
        raise ApiError(400, f"docs 不是合法的 JSON (docs is not valid JSON): {exc}") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "docs 必须是 {文件名: [文档, ...]} (docs must map file names to document lists)")
    out: dict[str, list[Document]] = {}
    for name, docs in data.items():
        rel = names.file_path(name)
        if not isinstance(docs, list):
            raise ApiError(400, f"docs[{rel}] must be a list of documents")
        out[rel] = [
            Document(str(d.get("page_content", "")), dict(d.get("metadata") or {})) for d in docs if isinstance(d, dict)
        ]
    return out


# --- knowledge bases -----------------------------------------------------------------------------------------------
@router.get("/list_knowledge_bases", summary="获取知识库列表 (list knowledge bases)", response_model=ListResponse)
async def list_knowledge_bases(request: Request, ctx: Ctx) -> ListResponse:
    kbs = await run_in_threadpool(ctx.service.list_kbs)
    return ListResponse(data=[kb.name for kb in kbs if may_use(request, kb.name)])


@router.post("/create_knowledge_base", summary="创建知识库 (create a knowledge base)", response_model=BaseResponse)
async def create_knowledge_base(req: CreateKBRequest, request: Request, ctx: Ctx) -> BaseResponse:
    if not req.knowledge_base_name.strip():
        raise ApiError(400, "知识库名称不能为空，请重新填写知识库名称", code=404)
    kb = names.kb_name(request, req.knowledge_base_name)
    # Request values are checked here (400); the same failure from the settings stays a server fault in the service.
    vs_type = requested_type(req.vector_store_type)
    model = ctx.service.embedders.choose(req.embed_model)
    await run_in_threadpool(ctx.service.create_kb, kb, req.kb_info, vs_type, model)
    return BaseResponse(msg=f"已新增知识库 {kb}")


@router.post("/delete_knowledge_base", summary="删除知识库 (delete a knowledge base)", response_model=BaseResponse)
async def delete_knowledge_base(
    request: Request,
    ctx: Ctx,
    knowledge_base_name: Annotated[
        str | DeleteKBRequest,
        Body(description='The name as a bare JSON string ("samples", as Chatchat) or {"knowledge_base_name": ...}'),
    ],
) -> BaseResponse:
    raw = knowledge_base_name if isinstance(knowledge_base_name, str) else knowledge_base_name.knowledge_base_name
    kb = names.kb_name(request, raw)
    _require_kb(ctx, kb)
    for job in ctx.jobs.list():  # a rebuild still running would recreate what is being deleted
        if job.kb == kb and not job.done:
            ctx.jobs.cancel(job.id)
    await run_in_threadpool(ctx.service.delete_kb, kb)
    return BaseResponse(msg=f"成功删除知识库 {kb}")


@router.post("/update_info", summary="更新知识库介绍 (update a KB's description)", response_model=BaseResponse)
async def update_info(req: UpdateInfoRequest, request: Request, ctx: Ctx) -> BaseResponse:
    kb = names.kb_name(request, req.knowledge_base_name)
    await run_in_threadpool(ctx.service.update_info, kb, req.kb_info)
    return BaseResponse(msg="知识库介绍修改完成", data={"kb_info": req.kb_info})


# --- files ---------------------------------------------------------------------------------------------------------
@router.get("/list_files", summary="获取知识库内的文件列表 (list a KB's files)", response_model=ListResponse)
async def list_files(
    request: Request, ctx: Ctx, knowledge_base_name: str = Query(..., max_length=NAME_MAX, examples=["samples"])
):
    kb = names.kb_name(request, knowledge_base_name)
    return ListResponse(data=await run_in_threadpool(ctx.service.file_names, kb))


@router.post("/search_docs", summary="搜索知识库 (search a knowledge base)")
async def search_docs(req: SearchDocsRequest, request: Request, ctx: Ctx) -> list[dict[str, Any]]:
    """A raw JSON array of ``{page_content, metadata, type: "Document", id, score, relevance}``: ``score`` is
    Chatchat's distance (lower is better), ``relevance`` is 0..1 (higher is better)."""
    kb = names.kb_name(request, req.knowledge_base_name)
    file_name = names.file_path(req.file_name) if req.file_name else None
    _require_kb(ctx, kb, [file_name] if file_name else None)
    if req.query:
        threshold = ctx.settings.kb.score_threshold if req.score_threshold is None else req.score_threshold
        top_k = req.top_k or ctx.settings.kb.top_k
        hits = await run_in_threadpool(ctx.searcher, kb, req.query, top_k, threshold, file_name, req.metadata)
        return [_doc(h) for h in hits]
    if file_name or req.metadata:
        return await run_in_threadpool(_list_docs, ctx, kb, file_name, req.metadata)
    return []


def _list_docs(ctx: AppContext, kb: str, file_name: str | None, metadata: dict[str, Any]) -> list[dict[str, Any]]:
    paths = [file_name] if file_name else ctx.service.file_names(kb)
    out = []
    for path in paths:
        try:
            chunks = ctx.service.file_chunks(kb, path)
        except KBQAError:
            continue
        for doc in chunks:
            if all(str(doc.metadata.get(k)) == str(v) for k, v in metadata.items()):
                chunk_id = str(doc.metadata.get("id"))
                meta = {**doc.metadata, "source": path, "id": chunk_id}
                out.append(
                    {
                        "page_content": doc.text,
                        "metadata": meta,
                        "type": "Document",
                        "id": chunk_id,
                        "score": LIST_DOCS_SCORE,
                    }
                )
    return out


def _save_uploads(
    ctx: AppContext, kb: str, uploads: list[tuple[str, UploadFile]], override: bool
) -> tuple[list[str], dict[str, str]]:
    """Chatchat's rule: without override, a file of the same path *and size* is refused; otherwise it is replaced."""
    folder = ctx.service.folder(kb)
    saved: list[str] = []
    failed: dict[str, str] = {}
    for rel, upload in uploads:
        try:
            target = folder.file_path(rel)
            if not override and target.is_file() and upload.size is not None and target.stat().st_size == upload.size:
                failed[rel] = f"文件 {rel} 已存在。"
                continue
            upload.file.seek(0)
            ctx.service.save_upload(kb, rel, upload.file, override=True)
            saved.append(rel)
        except KBQAError as exc:
            failed[rel] = exc.message
    return saved, failed


@router.post(
    "/upload_docs",
    summary="上传文件到知识库，并/或进行向量化 (upload files, then index them)",
    response_model=BaseResponse,
    responses=ACCEPTED,
)
async def upload_docs(
    request: Request,
    ctx: Ctx,
    files: Annotated[list[UploadFile], File(description="Files; names may hold sub-folders (wiki/Home.md)")],
    knowledge_base_name: Annotated[str, Form(max_length=NAME_MAX, examples=["samples"])],
    override: Annotated[bool, Form(description="Replace existing files")] = False,
    to_vector_store: Annotated[bool, Form(description="Index after saving")] = True,
    chunk_size: Annotated[int | None, Form(gt=0, le=CHUNK_SIZE_MAX)] = None,
    chunk_overlap: Annotated[int | None, Form(ge=0, lt=CHUNK_SIZE_MAX)] = None,
    zh_title_enhance: Annotated[bool | None, Form()] = None,
    docs: Annotated[
        str,
        Form(max_length=100 * DOC_TEXT_MAX, description="Custom docs, JSON string {file: [{page_content, metadata}]}"),
    ] = "",
    not_refresh_vs_cache: Annotated[bool, Form(description="Accepted; indexes are always saved")] = False,
    background: Annotated[bool, Form(description="Return a job id at once (HTTP 202) instead of waiting")] = False,
):  # type: ignore[no-untyped-def]
    kb = names.kb_name(request, knowledge_base_name)
    # Every name is checked before anything is written: one hostile name refuses the whole request.
    uploads = [(names.file_path(f.filename or ""), f) for f in files]
    custom = _parse_custom_docs(docs)
    _require_kb(ctx, kb, [rel for rel, _ in uploads] + list(custom))
    split = ctx.split(chunk_size, chunk_overlap, zh_title_enhance)  # refused before any file is saved
    saved, failed = await run_in_threadpool(_save_uploads, ctx, kb, uploads, override)
    if not to_vector_store and not custom:
        return body(200, "文件上传完成 (saved, not indexed)", {"failed_files": failed})
    job = ctx.jobs.submit(
        "upload_docs", kb, ingest_job(ctx.service, kb, saved if to_vector_store else [], split, custom), summarize
    )
    if background:
        return _job_accepted(job, failed)
    report = await _wait(job)
    failed.update(report.failed)
    data = {"failed_files": failed, "skipped_docs": report.skipped_docs, "job_id": job.id}
    return body(200, "文件上传与向量化完成", data)


@router.post("/delete_docs", summary="删除知识库内指定文件 (delete files)", response_model=BaseResponse)
async def delete_docs(req: DeleteDocsRequest, request: Request, ctx: Ctx) -> BaseResponse:
    kb = names.kb_name(request, req.knowledge_base_name)
    paths = names.file_paths(req.file_names)
    _require_kb(ctx, kb, paths)
    failed = await run_in_threadpool(lambda: ctx.service.delete_files(kb, paths, delete_content=req.delete_content))
    return BaseResponse(msg="文件删除完成", data={"failed_files": failed})


@router.post(
    "/update_docs", summary="更新现有文件到知识库 (re-index files)", response_model=BaseResponse, responses=ACCEPTED
)
async def update_docs(req: UpdateDocsRequest, request: Request, ctx: Ctx):  # type: ignore[no-untyped-def]
    kb = names.kb_name(request, req.knowledge_base_name)
    paths = names.file_paths(req.file_names)
    custom = _parse_custom_docs(req.docs)
    _require_kb(ctx, kb, paths + list(custom))
    files = {f.path: f for f in await run_in_threadpool(ctx.service.list_files, kb)}
    failed: dict[str, str] = {}
    todo: list[str] = []
    for rel in paths:
        info = files.get(rel)
        if info is not None and info.custom_docs and not req.override_custom_docs:
            continue  # Chatchat: files with custom docs keep them unless override_custom_docs
        if rel in custom:
            continue
        if info is None and not ctx.service.folder(kb).exists(rel):
            failed[rel] = f"未找到文件 {rel} (file not found)"
            continue
        todo.append(rel)
    split = ctx.split(req.chunk_size, req.chunk_overlap, req.zh_title_enhance)
    job = ctx.jobs.submit("update_docs", kb, ingest_job(ctx.service, kb, todo, split, custom, force=True), summarize)
    if req.background:
        return _job_accepted(job, failed)
    report = await _wait(job)
    failed.update(report.failed)
    return body(200, "更新文档完成", {"failed_files": failed, "skipped_docs": report.skipped_docs, "job_id": job.id})


@router.post(
    "/update_docs_by_id", summary="按 id 更新知识库文档 (replace or delete chunks by id)", response_model=BaseResponse
)
async def update_docs_by_id(req: UpdateDocsByIdRequest, request: Request, ctx: Ctx) -> BaseResponse:
    kb = names.kb_name(request, req.knowledge_base_name)
    _require_kb(ctx, kb)
    docs = {_chunk_id(k): None if d is None else Document(d.page_content, d.metadata) for k, d in req.docs.items()}
    try:
        await run_in_threadpool(ctx.service.update_chunks, kb, docs)
    except ChunkNotFound as exc:  # Chatchat's message for this case, which its clients compare
        raise ApiError(404, "文档更新失败", code=500, data={"detail": exc.message}) from exc
    return BaseResponse(msg="文档更新成功")


def _chunk_id(raw: str) -> int:
    """Chunk ids travel as strings (Chatchat's were uuids); ours are the index's integer ids."""
    if not raw.isdigit() or len(raw) > 18:
        raise ApiError(404, "文档更新失败", code=500, data={"detail": f"unknown chunk id {raw[:40]!r}"})
    return int(raw)


@router.get("/download_doc", summary="下载知识库文档 (download or preview a file)")
async def download_doc(
    request: Request,
    ctx: Ctx,
    knowledge_base_name: str = Query(..., max_length=NAME_MAX, examples=["samples"]),
    file_name: str = Query(..., max_length=PATH_MAX, examples=["test.txt"]),
    preview: bool = Query(False, description="Show in the browser instead of downloading"),
):  # type: ignore[no-untyped-def]
    kb = names.kb_name(request, knowledge_base_name)
    rel = names.file_path(file_name)
    _require_kb(ctx, kb, [rel])
    path = ctx.service.folder(kb).file_path(rel)  # resolved, symlinks included, and proven inside content/
    if not path.is_file():
        raise ApiError(404, f"{rel} 读取文件失败", code=500)
    media_type = (mimetypes.guess_type(path.name)[0] or "application/octet-stream") if preview else None
    return FileResponse(
        path,
        filename=path.name,
        media_type=media_type or "application/octet-stream",
        content_disposition_type="inline" if preview else "attachment",
        headers={"X-Content-Type-Options": "nosniff"},
    )


@router.post(
    "/recreate_vector_store",
    summary="根据content中文档重建向量库，流式输出处理进度 (rebuild, SSE progress)",
    responses={**sse_responses("SSE: data: {json}\\r\\n\\r\\n per file, then a closing event"), **ACCEPTED},
)
async def recreate_vector_store(req: RecreateRequest, request: Request, ctx: Ctx):  # type: ignore[no-untyped-def]
    kb = names.kb_name(request, req.knowledge_base_name)
    # Every request value is checked before the KB is created or its rows touched.
    vs_type = requested_type(req.vs_type)
    model = ctx.service.embedders.choose(req.embed_model) if req.embed_model else None
    split = ctx.split(req.chunk_size, req.chunk_overlap, req.zh_title_enhance)
    if not await run_in_threadpool(ctx.service.exists, kb):
        if not req.allow_empty_kb:
            return JSONResponse(body(404, f"未找到知识库 {kb}"), status_code=404)
        await run_in_threadpool(ctx.service.create_kb, kb, None, vs_type, model)
    job = ctx.jobs.submit("recreate_vector_store", kb, recreate_job(ctx.service, kb, split, model, vs_type), summarize)
    if req.background:
        return _job_accepted(job, {})
    return sse_response(_recreate_events(job, kb), ctx.settings.api.sse_ping_s)


async def _recreate_events(job: Job, kb: str) -> AsyncIterator[dict[str, Any]]:
    """Chatchat's progress events, one per file, then one closing event; a client that disconnects does not stop
    the rebuild (it is a job: see /jobs/{id})."""
    seen = 0
    while True:
        for e in job.events_since(seen):
            seen += 1
            if e.get("status") == "failed":
                yield {
                    "code": 500,
                    "msg": f"添加文件‘{e['file']}’到知识库‘{kb}’时出错：{e.get('error')}。已跳过。",
                    "doc": e["file"],
                    "job_id": job.id,
                }
            else:
                yield {
                    "code": 200,
                    "msg": f"({e['finished']} / {e['total']}): {e['file']}",
                    "total": e["total"],
                    "finished": e["finished"],
                    "doc": e["file"],
                    "job_id": job.id,
                }
        if job.done and seen >= len(job.events_since(0)):
            break
        await asyncio.sleep(0.05)
    if job.status == "failed":
        yield {"code": 500, "msg": f"重建知识库‘{kb}’失败：{job.error}", "job_id": job.id}
    else:
        yield {
            "code": 200,
            "msg": f"知识库‘{kb}’重建完成 ({job.status})",
            "total": job.total,
            "finished": job.finished,
            "job_id": job.id,
            "result": job.result,
        }


@router.post(
    "/upload_temp_docs",
    summary="上传文件到临时目录，用于文件对话 (upload files for /chat/file_chat)",
    response_model=BaseResponse,
)
async def upload_temp_docs(
    ctx: Ctx,
    files: Annotated[list[UploadFile], File(description="Files to chat with")],
    prev_id: Annotated[str | None, Form(max_length=64, description="Temporary KB to drop")] = None,
    chunk_size: Annotated[int | None, Form(gt=0, le=CHUNK_SIZE_MAX)] = None,
    chunk_overlap: Annotated[int | None, Form(ge=0, lt=CHUNK_SIZE_MAX)] = None,
    zh_title_enhance: Annotated[bool | None, Form()] = None,
) -> BaseResponse:
    uploads = [(names.file_path(f.filename or ""), f.file) for f in files]
    split = ctx.split(chunk_size, chunk_overlap, zh_title_enhance)
    kb_id, failed = await run_in_threadpool(ctx.temp_kbs.create, uploads, split, prev_id)
    return BaseResponse(data={"id": kb_id, "failed_files": failed})
