"""/auth/whoami: what the calling key may do, so a client (the web UI) can hide what it would be refused."""

from __future__ import annotations

from fastapi import APIRouter, Request

from kbqa.api.auth import principal_of
from kbqa.api.schemas import BaseResponse

router = APIRouter(prefix="/auth", tags=["Server State"])


@router.get(
    "/whoami", summary="The calling key's scope (read, write, admin) and knowledge bases", response_model=BaseResponse
)
async def whoami(request: Request) -> BaseResponse:
    return BaseResponse(data=principal_of(request).describe())
