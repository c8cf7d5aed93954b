"""/jobs: background jobs (uploads, updates, rebuilds, exports, imports): status, per-file progress, errors, cancel."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Request

from kbqa.api.auth import check_kb, may_use
from kbqa.api.context import AppContext, Ctx
from kbqa.api.schemas import BaseResponse
from kbqa.jobs.manager import Job

router = APIRouter(prefix="/jobs", tags=["Jobs"])

_JOB_ID = Path(..., pattern=r"^[0-9a-f]{32}$", description="id returned when the job was submitted")


def _visible_job(request: Request, ctx: AppContext, job_id: str) -> Job:
    job = ctx.jobs.get(job_id)
    if job.kb:
        check_kb(request, job.kb)
    return job


@router.get("", summary="List jobs, newest first (without per-file detail)", response_model=BaseResponse)
async def list_jobs(request: Request, ctx: Ctx) -> BaseResponse:
    jobs: list[dict[str, Any]] = [
        j.snapshot(with_files=False) for j in ctx.jobs.list() if not j.kb or may_use(request, j.kb)
    ]
    return BaseResponse(data=jobs)


@router.get("/{job_id}", summary="A job's status, per-file progress and errors", response_model=BaseResponse)
async def get_job(request: Request, ctx: Ctx, job_id: str = _JOB_ID) -> BaseResponse:
    return BaseResponse(data=_visible_job(request, ctx, job_id).snapshot())


@router.post(
    "/{job_id}/cancel",
    summary="Cancel a job (a running one stops after its current batch of files)",
    response_model=BaseResponse,
)
async def cancel_job(request: Request, ctx: Ctx, job_id: str = _JOB_ID) -> BaseResponse:
    _visible_job(request, ctx, job_id)
    return BaseResponse(msg="cancel requested", data=ctx.jobs.cancel(job_id).snapshot(with_files=False))
