"""The one mapping from errors to HTTP: a real status code with Chatchat's ``{code, msg, data}`` body.

``code`` and ``msg`` keep what Chatchat 0.2 put there (its clients and tests compare the Chinese messages), while the
HTTP status now tells the truth: Chatchat answered almost every error with HTTP 200. The KB-as-model OpenAI routes
answer with OpenAI's ``{"error": {...}}`` envelope instead, so OpenAI clients raise their usual exceptions.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from kbqa.errors import FileExistsInKB, InvalidName, InvalidPath, KBExists, KBNotFound, KBQAError
from kbqa.llm.errors import LLMError

log = logging.getLogger(__name__)

OPENAI_PREFIX = "/kb/v1"
ATTACK_MSG = "Don't attack me"


class ApiError(Exception):
    """An error a route raises with Chatchat's exact ``code``/``msg`` and the real HTTP status."""

    def __init__(self, status: int, msg: str, *, code: int | None = None, data: Any = None) -> None:
        super().__init__(msg)
        self.status = status
        self.msg = msg
        self.code = code if code is not None else status
        self.data = data


def body(code: int, msg: str, data: Any = None) -> dict[str, Any]:
    return {"code": code, "msg": msg, "data": data}


def _kb(request: Request) -> str:
    return str(getattr(request.state, "kb_name", "") or "")


def describe(exc: KBQAError, request: Request) -> tuple[int, int, str, Any]:
    """(HTTP status, Chatchat code, msg, data) for a domain error."""
    if isinstance(exc, InvalidName | InvalidPath):
        return 400, 403, ATTACK_MSG, {"detail": exc.message}
    if isinstance(exc, KBNotFound):
        return 404, 404, f"未找到知识库 {_kb(request)}", None
    if isinstance(exc, KBExists):
        return 409, 404, f"已存在同名知识库 {_kb(request)}", None
    if isinstance(exc, FileExistsInKB):
        return 409, 404, exc.message, None
    if isinstance(exc, LLMError):
        return exc.status_code, exc.status_code, f"LLM 调用出错 (LLM call failed): {exc.message}", None
    return exc.status_code, exc.status_code, exc.message, None


def error_response(request: Request, status: int, code: int, msg: str, data: Any = None) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if request.url.path.startswith(OPENAI_PREFIX):
        kind = "invalid_request_error" if status < 500 else "server_error"
        detail = msg if data is None else f"{msg}: {data}"
        content: dict[str, Any] = {"error": {"message": detail, "type": kind, "param": None, "code": code}}
        return JSONResponse(content, status_code=status, headers=headers)
    return JSONResponse(body(code, msg, data), status_code=status, headers=headers)


def register_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(request, exc.status, exc.code, exc.msg, exc.data)

    @app.exception_handler(KBQAError)
    async def _domain_error(request: Request, exc: KBQAError) -> JSONResponse:
        status, code, msg, data = describe(exc, request)
        return error_response(request, status, code, msg, data)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in exc.errors()]
        response = error_response(request, 422, 422, "请求参数错误 (invalid request)", errors)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(request, exc.status_code, exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The exception text may carry paths or SQL; it goes to the log, not to the client.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(request, 500, 500, "服务器内部错误 (internal server error)")
