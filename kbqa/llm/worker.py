"""Model worker: one route set for every backend, registration and heartbeats with the controller.

Routes (FastChat's names): ``/worker_generate_stream`` (NDJSON deltas), ``/worker_generate``,
``/worker_get_embeddings``, ``/count_token``, ``/worker_get_status``, ``/model_details``, plus ``/health``.

Run: ``python -m kbqa.llm.worker [--model-path PATH] [--port 21002] [--controller-address URL]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from prometheus_client import CollectorRegistry

from kbqa.llm.backends.base import EventStream, ModelBackend
from kbqa.llm.disconnect import unless_disconnected
from kbqa.llm.errors import InternalError, LLMError, ModelNotFound, error_from_envelope
from kbqa.llm.http_errors import as_llm_error, install_error_handlers
from kbqa.llm.protocol import (
    CountTokensRequest,
    CountTokensResult,
    EmbeddingsRequest,
    EmbeddingsResult,
    GenerateEvent,
    GenerateRequest,
    GenerateResult,
    HealthResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    ModelDetails,
    RegisterWorkerRequest,
    WorkerRefRequest,
    WorkerStatus,
)
from kbqa.llm.settings import WorkerSettings
from kbqa.llm.worker_metrics import WorkerMetrics
from kbqa.observability.instrument import instrument_app
from kbqa.observability.settings import LoggingSettings, MetricsSettings

log = logging.getLogger(__name__)

NDJSON = "application/x-ndjson"


def worker_address(settings: WorkerSettings) -> str:
    return settings.worker_address or f"http://{settings.host}:{settings.port}"


def worker_status(backend: ModelBackend) -> WorkerStatus:
    details = backend.details
    return WorkerStatus(
        model_names=details.model_names,
        kind=details.kind,
        queue_length=backend.queue_length(),
        context_length=details.context_length,
    )


class ControllerLink:
    """Registers the worker and keeps it alive at the controller; never crashes the worker if the controller is
    down (FastChat asserted on the first registration), it just keeps trying."""

    def __init__(self, settings: WorkerSettings, backend: ModelBackend) -> None:
        self.settings = settings
        self.backend = backend
        self.address = worker_address(settings)
        self.registered = asyncio.Event()
        self._client = httpx.AsyncClient(base_url=settings.controller_address, timeout=5.0)

    async def register(self) -> bool:
        body = RegisterWorkerRequest(worker_name=self.address, worker_status=worker_status(self.backend))
        try:
            r = await self._client.post("/register_worker", json=body.model_dump())
        except httpx.HTTPError as exc:
            log.warning("controller %s unreachable: %s", self.settings.controller_address, exc)
            return False
        if r.status_code != 200:
            log.warning("controller refused registration: %s %s", r.status_code, r.text[:300])
            return False
        self.registered.set()
        log.info("registered %s at %s", self.address, self.settings.controller_address)
        return True

    async def heartbeat(self) -> None:
        body = HeartbeatRequest(worker_name=self.address, queue_length=self.backend.queue_length())
        try:
            r = await self._client.post("/receive_heart_beat", json=body.model_dump())
            known = r.status_code == 200 and HeartbeatResponse.model_validate(r.json()).exist
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("heartbeat failed: %s", exc)
            return
        if not known:
            # The controller restarted or dropped us: come back at once rather than at the next interval.
            self.registered.clear()
            await self.register()

    async def run(self) -> None:
        delay = 0.5
        while not await self.register():
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.settings.heartbeat_interval_s)
        while True:
            await asyncio.sleep(self.settings.heartbeat_interval_s)
            await self.heartbeat()

    async def unregister(self) -> None:
        with contextlib.suppress(httpx.HTTPError):
            await self._client.post("/remove_worker", json=WorkerRefRequest(worker_name=self.address).model_dump())
        await self._client.aclose()


def _event_line(event: GenerateEvent) -> bytes:
    return (event.model_dump_json(exclude_none=True) + "\n").encode()


async def _ndjson(stream: EventStream) -> AsyncIterator[bytes]:
    try:
        async for event in stream:
            yield _event_line(event)
    except Exception as exc:  # headers are gone: the error travels as the stream's last line
        err = as_llm_error(exc)
        yield _event_line(GenerateEvent(error=err.to_envelope()["error"], status=err.status_code))
    finally:
        # Runs when the client disconnects too (Starlette cancels the body task): stop generating for nobody.
        await stream.aclose()


async def collect(stream: EventStream) -> GenerateResult:
    parts: list[str] = []
    try:
        async for event in stream:
            if event.error is not None:
                raise error_from_envelope(event.status or 500, {"error": event.error.model_dump()})
            parts.append(event.text)
            if event.finish_reason is not None:
                assert event.usage is not None
                return GenerateResult(text="".join(parts), finish_reason=event.finish_reason, usage=event.usage)
    finally:
        await stream.aclose()
    raise InternalError("generation ended without a finish event")


def create_app(
    backend: ModelBackend,
    settings: WorkerSettings,
    metrics: MetricsSettings | None = None,
    log_settings: LoggingSettings | None = None,
) -> FastAPI:
    link = ControllerLink(settings, backend) if settings.register_with_controller else None
    registry = CollectorRegistry()
    counted = WorkerMetrics(registry, backend)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(link.run()) if link else None
        try:
            yield
        finally:
            if task:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if link:
                await link.unregister()
            backend.close()

    app = FastAPI(title="kbqa model worker", lifespan=lifespan, docs_url=None, redoc_url=None)
    install_error_handlers(app)
    app.state.backend = backend
    app.state.link = link

    def check_model(name: str | None) -> None:
        if name is not None and name not in backend.details.model_names:
            raise ModelNotFound(f"this worker serves {backend.details.model_names}, not {name!r}", param="model")

    @app.post("/worker_generate_stream")
    async def generate_stream(body: GenerateRequest) -> StreamingResponse:
        check_model(body.model)
        stream = counted.track(await backend.generate_stream(body))
        return StreamingResponse(_ndjson(stream), media_type=NDJSON)

    @app.post("/worker_generate", response_model=GenerateResult)
    async def generate(body: GenerateRequest, request: Request) -> GenerateResult:
        check_model(body.model)
        stream = counted.track(await backend.generate_stream(body))
        return await unless_disconnected(request, collect(stream))

    @app.post("/worker_get_embeddings", response_model=EmbeddingsResult)
    async def embeddings(body: EmbeddingsRequest) -> EmbeddingsResult:
        check_model(body.model)
        result = await backend.embed(body.input)
        counted.embedding_inputs.inc(len(body.input))
        return result

    @app.post("/count_token", response_model=CountTokensResult)
    async def count_token(body: CountTokensRequest) -> CountTokensResult:
        check_model(body.model)
        return CountTokensResult(count=await asyncio.to_thread(backend.count_tokens, body))

    @app.api_route("/worker_get_status", methods=["GET", "POST"], response_model=WorkerStatus)
    async def get_status() -> WorkerStatus:
        return worker_status(backend)

    @app.api_route("/model_details", methods=["GET", "POST"], response_model=ModelDetails)
    async def model_details() -> ModelDetails:
        return backend.details

    @app.get("/health", response_model=HealthResponse)
    async def health() -> HealthResponse:
        detail: dict[str, Any] = {
            "models": backend.details.model_names,
            "queue_length": backend.queue_length(),
        }
        if link is not None:
            detail["registered"] = link.registered.is_set()
        return HealthResponse(detail=detail)

    instrument_app(app, "worker", metrics, registry, log_settings)
    return app


def main(argv: list[str] | None = None) -> None:
    from kbqa.llm.backends.loader import load_backend
    from kbqa.llm.service_cli import base_parser, configure_logging, run_app, settings_from

    parser = base_parser("kbqa model worker: serves one model to the controller and the OpenAI server.")
    parser.add_argument(
        "--model-path",
        help="catalog model name (kbqa models list), or a local Hugging Face folder, sentence-transformers folder or "
        ".gguf file (default: the bundled SmolLM2-135M-Instruct)",
    )
    parser.add_argument("--model-names", help="comma-separated names to serve the model under")
    parser.add_argument("--backend", choices=["auto", "llama_cpp", "transformers", "sentence_transformers"])
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--dtype", choices=["auto", "float32", "bfloat16", "float16"])
    parser.add_argument("--controller-address", help="controller URL (default http://127.0.0.1:21001)")
    parser.add_argument("--worker-address", help="URL others reach this worker at (default http://HOST:PORT)")
    parser.add_argument("--max-batch-size", type=int, help="most sequences decoded together")
    parser.add_argument("--num-threads", type=int, help="CPU threads (0: all cores but one)")
    parser.add_argument("--kv-cache-tokens", type=int, help="llama.cpp: KV-cache cells shared by running requests")
    parser.add_argument("--max-queue-size", type=int, help="waiting requests beyond this get 503 + Retry-After")
    parser.add_argument("--models-dir", help="where catalog models are installed (default ~/.local/share/kbqa/models)")
    parser.add_argument("--model-cache-dir", help="where GGUF files are converted once (default ~/.cache/kbqa/models)")
    parser.add_argument("--no-register", action="store_true", help="do not register with a controller")
    args = parser.parse_args(argv)

    everything = settings_from(args)
    settings = everything.llm.worker
    overrides: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "model_path": args.model_path,
        "model_names": [n.strip() for n in args.model_names.split(",") if n.strip()] if args.model_names else None,
        "backend": args.backend,
        "device": args.device,
        "dtype": args.dtype,
        "controller_address": args.controller_address,
        "worker_address": args.worker_address,
        "max_batch_size": args.max_batch_size,
        "num_threads": args.num_threads,
        "kv_cache_tokens": args.kv_cache_tokens,
        "max_queue_size": args.max_queue_size,
        "models_dir": args.models_dir,
        "model_cache_dir": args.model_cache_dir,
        "register_with_controller": False if args.no_register else None,
    }
    settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    settings = WorkerSettings.model_validate(settings.model_dump())
    configure_logging(args.log_level, everything.logging)
    try:
        backend = load_backend(settings)
    except LLMError as exc:
        # A wrong path or device is the operator's to fix: say so in one line, not a traceback.
        parser.exit(2, f"kbqa worker: {exc.message}\n")
    app = create_app(backend, settings, everything.metrics, everything.logging)
    run_app(app, settings.host, settings.port, args.log_level, everything.logging)


if __name__ == "__main__":
    main()
