"""/knowledge_base/export, /knowledge_base/download_backup, /knowledge_base/import: a knowledge base as one archive
(kbqa.knowledge.backup), written and read by background jobs."""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from kbqa.api import names
from kbqa.api.auth import check_kb
from kbqa.api.context import AppContext, Ctx
from kbqa.api.errors import ApiError, body
from kbqa.api.schemas import ACCEPTED, MODEL_NAME_MAX, NAME_MAX, PATH_MAX, BaseResponse, ExportRequest
from kbqa.errors import KBExists, KBNotFound
from kbqa.jobs.ingest import export_job, import_job
from kbqa.jobs.manager import Job
from kbqa.knowledge.backup import BackupReport, peek_name

router = APIRouter(prefix="/knowledge_base", tags=["Knowledge Base Management"])

# <kb>-<UTC time>-<random>.kbqa.tar[.gz]: the KB it holds can be read back from the name (for keys limited to KBs)
_ARCHIVE_RE = re.compile(r"^(?P<kb>.+)-\d{8}T\d{6}Z-[0-9a-f]{8}\.kbqa\.tar(?:\.gz)?$")
_INCOMING = ".incoming"


def backup_dir(ctx: AppContext) -> Path:
    api = ctx.settings.api
    return ctx.settings.resolve(api.backup_dir) if api.backup_dir else ctx.settings.kb_root / ".backups"


def _download_url(name: str) -> str:
    return f"/knowledge_base/download_backup?file_name={name}"


async def _finish(job: Job, background: bool, extra: dict[str, Any]) -> JSONResponse:
    if background:
        data = {"job_id": job.id, "status_url": f"/jobs/{job.id}", **extra}
        return JSONResponse(body(200, f"已提交后台任务 {job.id} (job queued)", data), status_code=202)
    assert job.future is not None
    report: BackupReport = await asyncio.wrap_future(job.future)
    return JSONResponse(body(200, "success", {**report.summary(), "job_id": job.id, **extra}))


@router.post(
    "/export",
    summary="Write a knowledge base to one archive (files, settings, chunks, embeddings, keywords)",
    response_model=BaseResponse,
    responses=ACCEPTED,
)
async def export_knowledge_base(req: ExportRequest, request: Request, ctx: Ctx) -> JSONResponse:
    kb = names.kb_name(request, req.knowledge_base_name)
    if not await run_in_threadpool(ctx.service.exists, kb):
        raise KBNotFound(f"knowledge base {kb} not found")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"{kb}-{stamp}-{secrets.token_hex(4)}.kbqa.tar{'.gz' if req.compress else ''}"
    folder = backup_dir(ctx)
    folder.mkdir(parents=True, exist_ok=True)
    job = ctx.jobs.submit(
        "export_knowledge_base", kb, export_job(ctx.service, kb, folder / name), lambda r: r.summary()
    )
    return await _finish(job, req.background, {"archive": name, "download_url": _download_url(name)})


@router.get("/download_backup", summary="Download an archive written by /knowledge_base/export")
async def download_backup(
    request: Request, ctx: Ctx, file_name: str = Query(..., max_length=PATH_MAX, examples=["samples-….kbqa.tar"])
) -> FileResponse:
    found = _ARCHIVE_RE.match(file_name)
    if found is None or "/" in file_name or file_name.startswith("."):
        raise ApiError(400, f"{file_name[:200]!r} is not the name of an archive /knowledge_base/export wrote")
    check_kb(request, found["kb"])
    path = backup_dir(ctx) / file_name
    if not path.is_file() or path.is_symlink():
        raise ApiError(404, f"no archive {file_name[:200]} (not written yet, or deleted)")
    return FileResponse(path, filename=file_name, media_type="application/x-tar")


def _save_upload(upload: UploadFile, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    upload.file.seek(0)
    with target.open("xb") as out:
        shutil.copyfileobj(upload.file, out, 1 << 20)


@router.post(
    "/import",
    summary="Restore a knowledge base from an archive of /knowledge_base/export or `kbqa kb export`",
    response_model=BaseResponse,
    responses=ACCEPTED,
)
async def import_knowledge_base(
    request: Request,
    ctx: Ctx,
    file: Annotated[UploadFile, File(description="The archive (.kbqa.tar or .kbqa.tar.gz)")],
    new_name: Annotated[str | None, Form(max_length=NAME_MAX, description="Import under this name")] = None,
    overwrite: Annotated[bool, Form(description="Replace a knowledge base of the same name")] = False,
    reembed: Annotated[
        bool, Form(description="Embed the chunks again (needed when this server lacks the archive's model)")
    ] = False,
    embed_model: Annotated[str | None, Form(max_length=MODEL_NAME_MAX, description="With reembed: the model")] = None,
    background: Annotated[bool, Form(description="Return a job id at once (HTTP 202) instead of waiting")] = False,
) -> JSONResponse:
    if embed_model:
        ctx.service.embedders.choose(embed_model)  # a name the server does not offer: 400 before the upload is kept
    incoming = backup_dir(ctx) / _INCOMING / f"{secrets.token_hex(16)}.upload"
    await run_in_threadpool(_save_upload, file, incoming)
    try:
        # The name is known before the archive is checked: a clash (or a key limited to other KBs) is answered now.
        kb = names.kb_name(request, new_name or await run_in_threadpool(peek_name, incoming))
        if not overwrite and await run_in_threadpool(ctx.service.exists, kb):
            raise KBExists(f"knowledge base {kb} already exists")
        job = ctx.jobs.submit(
            "import_knowledge_base",
            kb,
            import_job(ctx.service, incoming, kb, overwrite, reembed, embed_model),
            lambda r: r.summary(),
        )
    except BaseException:
        incoming.unlink(missing_ok=True)
        raise
    return await _finish(job, background, {})
