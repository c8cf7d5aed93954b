"""Errors of the LLM side. Each one knows its HTTP status and its OpenAI error ``type``/``code``.

Services raise these; the one mapping to the wire is :func:`kbqa.llm.http_errors.error_response`. The same envelope
travels worker → OpenAI server → client, so a worker's 400 reaches the client as the same 400.
"""

from __future__ import annotations

from typing import Any

from kbqa.errors import KBQAError


class LLMError(KBQAError):
    status_code: int = 500
    error_type: str = "internal_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.param = param
        if code is not None:
            self.code = code
        self.retry_after = retry_after

    def to_envelope(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequest(LLMError):
    status_code = 400
    error_type = "invalid_request_error"


class ContextOverflow(InvalidRequest):
    code = "context_length_exceeded"


class Unsupported(InvalidRequest):
    code = "unsupported_parameter"


class AuthenticationFailed(LLMError):
    status_code = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class ModelNotFound(LLMError):
    status_code = 404
    error_type = "invalid_request_error"
    code = "model_not_found"


class NotFound(LLMError):
    status_code = 404
    error_type = "invalid_request_error"
    code = "not_found"


class RateLimited(LLMError):
    """The worker's queue is full: the caller should come back shortly."""

    status_code = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"


class Overloaded(LLMError):
    """No capacity at all right now (queue full, no live worker)."""

    status_code = 503
    error_type = "server_error"
    code = "overloaded"


class WorkerUnavailable(Overloaded):
    code = "worker_unavailable"


class UpstreamError(LLMError):
    """A worker answered with something that is not a well-formed reply."""

    status_code = 502
    error_type = "server_error"
    code = "bad_gateway"


class ModelLoadError(LLMError):
    status_code = 500
    error_type = "server_error"
    code = "model_load_error"


class InternalError(LLMError):
    status_code = 500
    error_type = "server_error"
    code = "internal_error"


_BY_STATUS: dict[int, type[LLMError]] = {
    400: InvalidRequest,
    401: AuthenticationFailed,
    404: NotFound,
    429: RateLimited,
    502: UpstreamError,
    503: Overloaded,
}


_BY_CODE: dict[str, type[LLMError]] = {
    "context_length_exceeded": ContextOverflow,
    "unsupported_parameter": Unsupported,
    "model_not_found": ModelNotFound,
    "invalid_api_key": AuthenticationFailed,
    "worker_unavailable": WorkerUnavailable,
    "overloaded": Overloaded,
    "rate_limit_exceeded": RateLimited,
}


def error_from_envelope(status: int, body: Any, retry_after: int | None = None) -> LLMError:
    """Rebuild an error received from another kbqa process (or any OpenAI-style server)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {"message": str(body)[:500] or f"HTTP {status}"}
    cls = _BY_STATUS.get(status, InternalError if status >= 500 else InvalidRequest)
    by_code = _BY_CODE.get(str(error.get("code")))
    if by_code is not None and by_code.status_code == status:
        cls = by_code
    exc = cls(str(error.get("message") or f"HTTP {status}"), param=error.get("param"), retry_after=retry_after)
    if error.get("code"):
        exc.code = str(error["code"])
    if error.get("type"):
        exc.error_type = str(error["type"])
    exc.status_code = status
    return exc
