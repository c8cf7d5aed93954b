"""The app factory: ``create_app(settings)`` builds the FastAPI app with every route group, the error mapping,
authentication, the body-size limit, CORS and offline docs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from kbqa import __version__
from kbqa.api.auth import KeyRing, authorize
from kbqa.api.context import AppContext
from kbqa.api.docs import mount_docs
from kbqa.api.errors import register_error_handlers
from kbqa.api.middleware import APIKeyMiddleware, BodyLimitMiddleware
from kbqa.api.routers import (
    auth_routes,
    backup,
    chat,
    jobs,
    knowledge_base,
    llm_model,
    native,
    openai_kb,
    server,
)
from kbqa.api.schemas import ERROR_RESPONSES, OPENAI_ERROR_RESPONSES
from kbqa.knowledge.service import KnowledgeBaseService
from kbqa.observability.instrument import instrument_app
from kbqa.observability.metrics import METRICS_PATH, open_metrics_path
from kbqa.settings import Settings


def create_app(settings: Settings, service: KnowledgeBaseService | None = None) -> FastAPI:
    """``service`` lets a caller share an already-built knowledge-base service (tests, the launcher)."""
    ctx = AppContext.build(settings, service)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await ctx.aclose()

    app = FastAPI(
        title="kbqa API Server",
        version=__version__,
        description="Langchain-Chatchat 0.2 compatible knowledge-base QA API. Errors carry a real HTTP status and "
        "Chatchat's {code, msg, data} body.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        dependencies=[Depends(authorize)],  # every route: the key's scope against kbqa.api.auth.ROUTE_SCOPES
    )
    app.state.ctx = ctx
    register_error_handlers(app)
    mount_docs(app)
    for group in (chat, knowledge_base, backup, llm_model, server, jobs, native, auth_routes):
        app.include_router(group.router, responses=ERROR_RESPONSES)
    app.include_router(openai_kb.router, responses=OPENAI_ERROR_RESPONSES)

    api = settings.api
    metrics = settings.metrics
    # Added innermost first: CORS answers preflights before auth, the size limit applies before any parsing.
    open_paths = frozenset({METRICS_PATH}) if open_metrics_path(metrics) else frozenset()
    app.add_middleware(APIKeyMiddleware, keys=KeyRing(api.keys()), open_paths=open_paths)
    app.add_middleware(BodyLimitMiddleware, max_bytes=int(api.max_upload_mb * (1 << 20)))
    if api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=api.cors_origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    instrument_app(app, "api", metrics, ctx.metrics.registry, settings.logging)
    return app
