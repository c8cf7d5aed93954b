"""ASGI middleware: API-key authentication and the request-body size limit. Both wrap every route, docs included."""

from __future__ import annotations

import json

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kbqa.api.auth import KeyRing, Principal, set_principal
from kbqa.api.errors import OPENAI_PREFIX, body


async def _send_json(send: Send, scope: Scope, status: int, code: int, msg: str, extra: list | None = None) -> None:
    if scope.get("path", "").startswith(OPENAI_PREFIX):
        payload: dict = {"error": {"message": msg, "type": "invalid_request_error", "param": None, "code": code}}
    else:
        payload = body(code, msg)
    raw = json.dumps(payload, ensure_ascii=False).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": raw})


class APIKeyMiddleware:
    """Accept ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; refuse everything else with 401. The key's
    :class:`~kbqa.api.auth.Principal` goes into the scope for :func:`~kbqa.api.auth.authorize`."""

    def __init__(self, app: ASGIApp, keys: KeyRing, open_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.keys = keys
        self.open_paths = open_paths  # routes with a key of their own (/metrics with metrics.api_key)

    def _principal(self, scope: Scope) -> Principal | None:
        given: list[bytes] = []
        for name, value in scope.get("headers", []):
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                given.append(value[7:].strip())
            elif name == b"x-api-key":
                given.append(value.strip())
        return self.keys.find(given)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys or scope.get("path") in self.open_paths:
            await self.app(scope, receive, send)
            return
        principal = self._principal(scope)
        if principal is not None:
            set_principal(scope, principal)
            await self.app(scope, receive, send)
            return
        msg = "需要有效的 API key (a valid API key is required)"
        await _send_json(send, scope, 401, 401, msg, [(b"www-authenticate", b"Bearer")])


class _TooLarge(HTTPException):
    """An HTTPException so that FastAPI's body parsing lets it through to the error handlers as a 413."""

    def __init__(self, msg: str) -> None:
        super().__init__(413, msg)


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes``: at once from Content-Length, or as soon as the stream passes it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        msg = f"请求体超过 {self.max_bytes // (1 << 20)} MiB (request body too large)"
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await _send_json(send, scope, 413, 413, msg)
                return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(msg)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _send_json(send, scope, 413, 413, msg)
