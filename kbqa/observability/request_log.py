"""One log line per HTTP request, and a request id that follows a request from server to server.

The id is the client's ``X-Request-ID`` when it sends a usable one (at most 128 letters, digits, ``-``, ``_``, ``.``,
``:``), otherwise a new one. It is answered in the response's ``X-Request-ID``, kept in a context variable for the
request's task (streams included), stamped on every log record written meanwhile, and sent on by kbqa's own HTTP
clients (the LLM client of the API server, the OpenAI server's calls to workers): the lines of one KB chat on the API
server, the OpenAI server and the worker carry the same id.
"""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid

import httpx
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kbqa.observability.metrics import route_template

HEADER = "X-Request-ID"
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("kbqa_request_id", default=None)
access_log = logging.getLogger("kbqa.requests")


def current_request_id() -> str | None:
    return _current.get()


def request_id_from(headers: Headers) -> str:
    given = headers.get(HEADER.lower(), "")
    return given if _VALID.match(given) else uuid.uuid4().hex


async def forward_request_id(request: httpx.Request) -> None:
    """An httpx (async) request hook: pass the current request's id on to the next server."""
    rid = _current.get()
    if rid is not None and HEADER not in request.headers:
        request.headers[HEADER] = rid


def forward_request_id_sync(request: httpx.Request) -> None:
    rid = _current.get()
    if rid is not None and HEADER not in request.headers:
        request.headers[HEADER] = rid


class RequestIdFilter(logging.Filter):
    """Stamps the current request id on every record (``record.request_id``, None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _current.get()
        return True


class RequestLogMiddleware:
    """Pure ASGI, outermost: sets the request id for everything inside, answers it in ``X-Request-ID`` and, when
    ``log_requests``, writes one line when the response body is done (method, route template, path, status,
    duration, request id, the API key's name when it has one)."""

    def __init__(self, app: ASGIApp, server: str, log_requests: bool = True) -> None:
        self.app = app
        self.server = server
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id_from(Headers(scope=scope))
        token = _current.set(rid)
        started = time.perf_counter()
        status = 500

        async def tagged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = MutableHeaders(scope=message)
                if HEADER.lower() not in headers:
                    headers.append(HEADER, rid)
            await send(message)

        try:
            await self.app(scope, receive, tagged)
        finally:
            if self.log_requests:
                self._log(scope, status, time.perf_counter() - started, rid)
            _current.reset(token)

    def _log(self, scope: Scope, status: int, seconds: float, rid: str) -> None:
        route = route_template(scope)
        path = scope.get("path", "")
        principal = scope.get("state", {}).get("kbqa_principal")
        key_name = getattr(principal, "name", "") or None
        fields = {
            "server": self.server,
            "method": scope.get("method", ""),
            "route": route,
            "path": path,
            "status": status,
            "duration_ms": round(seconds * 1000, 1),
            "request_id": rid,
            "client": (scope.get("client") or ("", 0))[0],
        }
        if key_name:
            fields["key"] = key_name
        level = logging.WARNING if status >= 500 else logging.INFO
        shown = path if len(path) <= 200 else path[:200] + "…"
        access_log.log(
            level,
            "%s %s %d %.1fms",
            fields["method"],
            shown,
            status,
            fields["duration_ms"],
            extra={"request": fields, "request_id": rid},
        )
