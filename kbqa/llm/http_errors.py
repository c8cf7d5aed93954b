"""The one mapping from errors to HTTP answers, shared by the controller, the worker and the OpenAI server.

Every error leaves as OpenAI's envelope ``{"error": {"message", "type", "param", "code"}}`` with a real status
(FastChat answered 400 for everything and plain-text 500s for the rest).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from kbqa.llm.errors import InternalError, InvalidRequest, LLMError, NotFound

log = logging.getLogger(__name__)


def error_response(exc: LLMError) -> JSONResponse:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return JSONResponse(exc.to_envelope(), status_code=exc.status_code, headers=headers)


def error_event_json(exc: LLMError) -> str:
    """A mid-stream error as one SSE ``data:`` payload."""
    return json.dumps(exc.to_envelope(), ensure_ascii=False)


def as_llm_error(exc: BaseException) -> LLMError:
    if isinstance(exc, LLMError):
        return exc
    log.error("unexpected error", exc_info=exc)
    return InternalError(f"internal error: {type(exc).__name__}")


def _param_of(loc: tuple[Any, ...]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    # Union members show up as type names in the location; they mean nothing to a client.
    parts = [p for p in parts if not p[:1].isupper() and "[" not in p and p != "function-after"]
    return ".".join(parts) or None


def validation_error(exc: RequestValidationError) -> InvalidRequest:
    errors = exc.errors()
    first = errors[0] if errors else {}
    loc = tuple(first.get("loc", ()))
    message = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
    param = _param_of(loc)
    if first.get("type") == "extra_forbidden":
        message = f"unrecognized request argument: {param}"
    elif first.get("type") == "json_invalid":
        message = "the body is not valid JSON"
    elif param:
        message = f"{param}: {message}"
    return InvalidRequest(message, param=param)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LLMError)
    async def _llm_error(request: Request, exc: LLMError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(NotFound(f"no route {request.method} {request.url.path}"))
        err = InvalidRequest(str(exc.detail)) if exc.status_code < 500 else InternalError(str(exc.detail))
        err.status_code = exc.status_code
        return JSONResponse(err.to_envelope(), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return error_response(as_llm_error(exc))
