"""OpenAI-compatible HTTP server in front of the controller and its workers.

Routes: ``GET /v1/models``, ``GET /v1/models/{id}``, ``POST /v1/chat/completions``, ``POST /v1/completions``,
``POST /v1/embeddings``, ``GET /health``, and ``GET /ui``: the plain-JavaScript chat page of
``examples/web-client/``. When API keys are configured every route but ``/ui``, ``/health`` included, needs
``Authorization: Bearer <key>``; the page asks its user for the key. Browsers on other origins are let in by
``allowed_origins`` (CORS with credentials, exact origins only).

Run: ``python -m kbqa.llm.openai_server [--port 8000] [--controller-address URL] [--api-keys k1,k2]``.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kbqa.errors import KBQAError
from kbqa.llm.disconnect import unless_disconnected
from kbqa.llm.dispatch import WorkerPool
from kbqa.llm.errors import AuthenticationFailed
from kbqa.llm.http_errors import error_response, install_error_handlers
from kbqa.llm.local_embeddings import LocalEmbedders
from kbqa.llm.openai_service import ChatService, CompletionService, EmbeddingService, ModelService
from kbqa.llm.protocol import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Completion,
    CompletionRequest,
    EmbeddingRequest,
    EmbeddingResponse,
    ErrorEnvelope,
    HealthResponse,
    ModelCard,
    ModelList,
)
from kbqa.llm.settings import OpenAIServerSettings
from kbqa.observability.instrument import instrument_app
from kbqa.observability.metrics import METRICS_PATH, open_metrics_path
from kbqa.observability.request_log import current_request_id
from kbqa.observability.settings import LoggingSettings, MetricsSettings

# Every error of this server is OpenAI's envelope; documented so generated clients and contract tests know it.
ERRORS: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorEnvelope, "description": "OpenAI's error envelope"},
    "5XX": {"model": ErrorEnvelope, "description": "OpenAI's error envelope"},
}
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
WEB_CLIENT_PAGE = Path(__file__).resolve().parents[2] / "examples" / "web-client" / "index.html"
WEB_CLIENT_PATHS = frozenset({"/ui", "/ui/"})


def _sse(chunk: type[Any]) -> dict[int | str, dict[str, Any]]:
    """stream=true answers 200 as server-sent events: ``data: {chunk}`` lines, then ``data: [DONE]``."""
    return {
        200: {
            "description": f"stream=false: the JSON object; stream=true: SSE of {chunk.__name__} objects",
            # The schema describes one event (OpenAPI 3.1's reading of text/event-stream); the last is [DONE].
            "content": {
                "text/event-stream": {
                    "schema": {"type": "object", "required": ["data"], "properties": {"data": {"type": "string"}}}
                }
            },
        }
    }


def _key_checker(settings: OpenAIServerSettings) -> Callable[[str | None], bool]:
    keys = [k.get_secret_value().encode() for k in settings.api_keys]

    def ok(header: str | None) -> bool:
        if not keys:
            return True
        if not header or not header.lower().startswith("bearer "):
            return False
        given = header[7:].strip().encode()
        # Constant-time, and every key is compared so timing does not reveal which one nearly matched.
        return any([hmac.compare_digest(given, k) for k in keys])

    return ok


class AuthMiddleware:
    """Pure ASGI (not BaseHTTPMiddleware) so streamed responses and client disconnects pass through untouched.
    Guards every route but ``open_paths``, unknown ones included, and tags every answer with an ``x-request-id``."""

    def __init__(
        self, app: ASGIApp, key_ok: Callable[[str | None], bool], open_paths: frozenset[str] = frozenset()
    ) -> None:
        self.app = app
        self.key_ok = key_ok
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        # The id the request-log layer outside set (the client's X-Request-ID, or a new one): one id per request.
        request_id = current_request_id() or headers.get("x-request-id") or uuid.uuid4().hex

        async def send_tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("x-request-id", request_id)
            await send(message)

        preflight = scope["method"] == "OPTIONS" and "access-control-request-method" in headers
        open_path = scope["path"] in self.open_paths
        if not preflight and not open_path and not self.key_ok(headers.get("authorization")):
            response = error_response(
                AuthenticationFailed("Incorrect or missing API key; send 'Authorization: Bearer <key>'.")
            )
            await response(scope, receive, send_tagged)
            return
        await self.app(scope, receive, send_tagged)


def create_app(
    settings: OpenAIServerSettings,
    local: LocalEmbedders | None = None,
    metrics: MetricsSettings | None = None,
    log_settings: LoggingSettings | None = None,
) -> FastAPI:
    metrics = metrics or MetricsSettings()
    pool = WorkerPool(settings, local)
    models, chat = ModelService(pool), ChatService(pool)
    completions, embeddings = CompletionService(pool), EmbeddingService(pool)
    key_ok = _key_checker(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await pool.aclose()

    app = FastAPI(title="kbqa OpenAI-compatible server", lifespan=lifespan, docs_url=None, redoc_url=None)
    install_error_handlers(app)

    # The page is a public static file; everything it calls stays behind the key.
    open_paths = WEB_CLIENT_PATHS if settings.web_client else frozenset()
    if open_metrics_path(metrics):  # /metrics checks metrics.api_key itself
        open_paths = open_paths | {METRICS_PATH}
    app.add_middleware(AuthMiddleware, key_ok=key_ok, open_paths=open_paths)
    if settings.allowed_origins:
        # Outside the auth layer: preflights carry no key, and a 401 must carry CORS headers or the page could not
        # read why it was refused. Origins are exact (checked in the settings), so credentials are safe to allow.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.allowed_origins,
            allow_credentials=True,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-Request-Id"],
            expose_headers=["X-Request-Id", "Retry-After"],
        )

    if settings.web_client:

        @app.get("/ui", include_in_schema=False)
        @app.get("/ui/", include_in_schema=False)
        async def web_client() -> Response:
            # Read on each request: the page is a plain file a developer edits and reloads.
            if not WEB_CLIENT_PAGE.is_file():
                return PlainTextResponse(f"{WEB_CLIENT_PAGE} is missing (run from a clone of kbqa)", status_code=404)
            return HTMLResponse(WEB_CLIENT_PAGE.read_text(encoding="utf-8"), headers={"Cache-Control": "no-cache"})

    @app.get("/v1/models", response_model=ModelList, responses=ERRORS)
    async def list_models() -> ModelList:
        return await models.list()

    @app.get("/v1/models/{model_id:path}", response_model=ModelCard, responses=ERRORS)
    async def get_model(model_id: str) -> ModelCard:
        return await models.get(model_id)

    @app.post("/v1/chat/completions", response_model=ChatCompletion, responses={**ERRORS, **_sse(ChatCompletionChunk)})
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
        if body.stream:
            return StreamingResponse(await chat.stream(body), media_type="text/event-stream", headers=SSE_HEADERS)
        return await unless_disconnected(request, chat.complete(body))

    @app.post("/v1/completions", response_model=Completion, responses={**ERRORS, **_sse(Completion)})
    async def text_completions(body: CompletionRequest, request: Request) -> Any:
        if body.stream:
            return StreamingResponse(
                await completions.stream(body), media_type="text/event-stream", headers=SSE_HEADERS
            )
        return await unless_disconnected(request, completions.complete(body))

    @app.post("/v1/embeddings", response_model=EmbeddingResponse, responses=ERRORS)
    async def create_embeddings(body: EmbeddingRequest) -> EmbeddingResponse:
        return await embeddings.embed(body)

    @app.get("/health", response_model=HealthResponse, responses=ERRORS)
    async def health() -> HealthResponse:
        return HealthResponse(detail={"models": [m.id for m in await pool.models(fresh=True)]})

    instrument_app(app, "openai", metrics, log_settings=log_settings)
    return app


def main(argv: list[str] | None = None) -> None:
    from pydantic import SecretStr, ValidationError

    from kbqa.llm.service_cli import base_parser, run_app, settings_from

    parser = base_parser("kbqa OpenAI-compatible server (chat, completions, embeddings, models).")
    parser.add_argument("--controller-address", help="controller URL (default http://127.0.0.1:21001)")
    parser.add_argument(
        "--api-keys",
        help="comma-separated bearer keys required on every route (prefer settings/env for secrets)",
    )
    parser.add_argument(
        "--allowed-origins", help="comma-separated CORS origins, scheme://host[:port] each (default: CORS off)"
    )
    parser.add_argument("--no-web-client", action="store_true", help="do not serve the chat page at /ui")
    parser.add_argument(
        "--embedding-models",
        help="comma-separated names from embedding.models to serve in-process on /v1/embeddings ('' for none)",
    )
    args = parser.parse_args(argv)
    everything = settings_from(args)
    settings = everything.llm.openai_server
    update: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "controller_address": args.controller_address,
    }
    if args.api_keys:
        update["api_keys"] = [SecretStr(k.strip()) for k in args.api_keys.split(",") if k.strip()]
    if args.allowed_origins:
        update["allowed_origins"] = [o.strip() for o in args.allowed_origins.split(",") if o.strip()]
    if args.no_web_client:
        update["web_client"] = False
    if args.embedding_models is not None:
        update["embedding_models"] = [n.strip() for n in args.embedding_models.split(",") if n.strip()]
    merged = {**settings.model_dump(), **{k: v for k, v in update.items() if v is not None}}
    try:
        # Validated, not model_copy'd: flags get the same checks as the settings file (no '*' origin).
        settings = OpenAIServerSettings.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        parser.exit(2, f"kbqa openai server: {first['loc'][0]}: {first['msg'].removeprefix('Value error, ')}\n")
    local = None
    if settings.embedding_models:
        try:
            local = LocalEmbedders(settings.embedding_models, everything.embedding)
        except KBQAError as exc:
            parser.exit(2, f"kbqa openai server: {exc.message}\n")
    app = create_app(settings, local, everything.metrics, everything.logging)
    run_app(app, settings.host, settings.port, args.log_level, everything.logging)


if __name__ == "__main__":
    main()
