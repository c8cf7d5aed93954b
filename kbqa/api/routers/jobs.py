"""/jobs: background ingestion jobs (uploads, updates, rebuilds): status, per-file progress, errors, cancel."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path

from kbqa.api.context import Ctx
from kbqa.api.schemas import BaseResponse

router = APIRouter(prefix="/jobs", tags=["Jobs"])

_JOB_ID = Path(..., pattern=r"^[0-9a-f]{32}$", description="id returned when the job was submitted")


@router.get("", summary="List jobs, newest first (without per-file detail)", response_model=BaseResponse)
async def list_jobs(ctx: Ctx) -> BaseResponse:
    jobs: list[dict[str, Any]] = [j.snapshot(with_files=False) for j in ctx.jobs.list()]
    return BaseResponse(data=jobs)


@router.get("/{job_id}", summary="A job's status, per-file progress and errors", response_model=BaseResponse)
async def get_job(ctx: Ctx, job_id: str = _JOB_ID) -> BaseResponse:
    return BaseResponse(data=ctx.jobs.get(job_id).snapshot())


@router.post(
    "/{job_id}/cancel",
    summary="Cancel a job (a running one stops after its current batch of files)",
    response_model=BaseResponse,
)
async def cancel_job(ctx: Ctx, job_id: str = _JOB_ID) -> BaseResponse:
    return BaseResponse(msg="cancel requested", data=ctx.jobs.cancel(job_id).snapshot(with_files=False))
