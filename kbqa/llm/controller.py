"""Controller: which workers are alive, which models they serve, and which worker takes the next request.

Differences from FastChat's controller: registration answers with a real status (a worker it cannot reach is
refused, not silently dropped); heartbeats expire after ``heartbeat_expiration_s`` (30 s, not 90-180 s); dispatch is
shortest-queue over in-flight counts that are decremented when a request finishes (``/release_worker``), not only
corrected by the next heartbeat; a worker that a caller could not reach is removed at once (``/remove_worker``); and
nothing blocks the event loop.

Run: ``python -m kbqa.llm.controller [--host 127.0.0.1] [--port 21001]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from prometheus_client import CollectorRegistry, Gauge

from kbqa.llm.errors import UpstreamError
from kbqa.llm.http_errors import install_error_handlers
from kbqa.llm.protocol import (
    GetWorkerAddressRequest,
    GetWorkerAddressResponse,
    HealthResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    ListModelsResponse,
    ListWorkersResponse,
    ModelEntry,
    ModelKind,
    ModelsDetailResponse,
    RegisterWorkerRequest,
    RegisterWorkerResponse,
    WorkerInfoOut,
    WorkerRefRequest,
    WorkerStatus,
)
from kbqa.llm.settings import ControllerSettings
from kbqa.observability.instrument import instrument_app
from kbqa.observability.settings import LoggingSettings, MetricsSettings

log = logging.getLogger(__name__)


@dataclass
class WorkerEntry:
    name: str
    model_names: list[str]
    kind: ModelKind
    speed: float
    queue_length: int
    check_heart_beat: bool
    last_heart_beat: float
    context_length: int | None
    in_flight: int = 0

    def load(self) -> float:
        # The worker's own figure covers traffic that bypassed us; ours is fresher between heartbeats.
        return max(self.in_flight, self.queue_length) / max(self.speed, 1e-6)

    def out(self) -> WorkerInfoOut:
        return WorkerInfoOut(
            worker_name=self.name,
            model_names=self.model_names,
            kind=self.kind,
            speed=self.speed,
            queue_length=self.queue_length,
            in_flight=self.in_flight,
            check_heart_beat=self.check_heart_beat,
            last_heart_beat=self.last_heart_beat,
            context_length=self.context_length,
        )


class WorkerRegistry:
    """The controller's state. Only touched from the event loop, so it needs no lock."""

    def __init__(self, expiration_s: float) -> None:
        self.expiration_s = expiration_s
        self.workers: dict[str, WorkerEntry] = {}

    def register(self, name: str, status: WorkerStatus, check_heart_beat: bool) -> WorkerEntry:
        previous = self.workers.get(name)
        entry = WorkerEntry(
            name=name,
            model_names=list(status.model_names),
            kind=status.kind,
            speed=status.speed if status.speed > 0 else 1.0,
            queue_length=status.queue_length,
            check_heart_beat=check_heart_beat,
            last_heart_beat=time.time(),
            context_length=status.context_length,
            # A re-registration (controller restart, network blip) keeps the requests we know are running there.
            in_flight=previous.in_flight if previous else 0,
        )
        self.workers[name] = entry
        return entry

    def heartbeat(self, name: str, queue_length: int) -> bool:
        entry = self.workers.get(name)
        if entry is None:
            return False
        entry.queue_length = queue_length
        entry.last_heart_beat = time.time()
        return True

    def remove(self, name: str) -> bool:
        return self.workers.pop(name, None) is not None

    def expire(self, now: float | None = None) -> list[str]:
        cutoff = (now if now is not None else time.time()) - self.expiration_s
        dead = [n for n, w in self.workers.items() if w.check_heart_beat and w.last_heart_beat < cutoff]
        for name in dead:
            del self.workers[name]
        return dead

    def pick(self, model: str, exclude: set[str]) -> WorkerEntry | None:
        candidates = [w for w in self.workers.values() if model in w.model_names and w.name not in exclude]
        if not candidates:
            return None
        best = min(candidates, key=WorkerEntry.load)
        best.in_flight += 1
        return best

    def release(self, name: str) -> None:
        entry = self.workers.get(name)
        if entry is not None and entry.in_flight > 0:
            entry.in_flight -= 1

    def models(self) -> list[ModelEntry]:
        found: dict[str, ModelEntry] = {}
        for w in self.workers.values():
            for name in w.model_names:
                if name in found:
                    found[name].workers += 1
                else:
                    found[name] = ModelEntry(id=name, kind=w.kind, context_length=w.context_length, workers=1)
        return sorted(found.values(), key=lambda m: m.id)


async def fetch_status(client: httpx.AsyncClient, worker: str) -> WorkerStatus:
    try:
        r = await client.post(f"{worker.rstrip('/')}/worker_get_status")
        r.raise_for_status()
        return WorkerStatus.model_validate(r.json())
    except (httpx.HTTPError, ValueError) as exc:
        raise UpstreamError(f"cannot get the status of worker {worker}: {exc}", param="worker_name") from exc


def create_app(
    settings: ControllerSettings, metrics: MetricsSettings | None = None, log_settings: LoggingSettings | None = None
) -> FastAPI:
    registry = WorkerRegistry(settings.heartbeat_expiration_s)
    client = httpx.AsyncClient(timeout=settings.status_timeout_s)

    async def sweep() -> None:
        while True:
            await asyncio.sleep(settings.sweep_interval_s)
            for name in registry.expire():
                log.warning("worker %s missed its heartbeats; removed", name)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(sweep())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await client.aclose()

    app = FastAPI(title="kbqa controller", lifespan=lifespan, docs_url=None, redoc_url=None)
    install_error_handlers(app)
    app.state.registry = registry

    @app.post("/register_worker", response_model=RegisterWorkerResponse)
    async def register_worker(body: RegisterWorkerRequest) -> RegisterWorkerResponse:
        status = body.worker_status or await fetch_status(client, body.worker_name)
        entry = registry.register(body.worker_name, status, body.check_heart_beat)
        log.info("registered worker %s serving %s", entry.name, entry.model_names)
        return RegisterWorkerResponse(registered=True, worker=entry.out())

    @app.post("/receive_heart_beat", response_model=HeartbeatResponse)
    async def receive_heart_beat(body: HeartbeatRequest) -> HeartbeatResponse:
        return HeartbeatResponse(exist=registry.heartbeat(body.worker_name, body.queue_length))

    @app.post("/remove_worker")
    async def remove_worker(body: WorkerRefRequest) -> dict[str, bool]:
        removed = registry.remove(body.worker_name)
        if removed:
            log.warning("worker %s removed: %s", body.worker_name, body.reason or "asked to")
        return {"removed": removed}

    @app.post("/get_worker_address", response_model=GetWorkerAddressResponse)
    async def get_worker_address(body: GetWorkerAddressRequest) -> GetWorkerAddressResponse:
        entry = registry.pick(body.model, set(body.exclude))
        return GetWorkerAddressResponse(address=entry.name if entry else "")

    @app.post("/release_worker")
    async def release_worker(body: WorkerRefRequest) -> dict[str, bool]:
        registry.release(body.worker_name)
        return {"released": True}

    @app.api_route("/list_models", methods=["GET", "POST"], response_model=ListModelsResponse)
    async def list_models() -> ListModelsResponse:
        return ListModelsResponse(models=[m.id for m in registry.models()])

    @app.api_route("/list_language_models", methods=["GET", "POST"], response_model=ListModelsResponse)
    async def list_language_models() -> ListModelsResponse:
        return ListModelsResponse(models=[m.id for m in registry.models() if m.kind == "chat"])

    @app.api_route("/list_embedding_models", methods=["GET", "POST"], response_model=ListModelsResponse)
    async def list_embedding_models() -> ListModelsResponse:
        return ListModelsResponse(models=[m.id for m in registry.models() if m.kind == "embedding"])

    @app.api_route("/list_models_detail", methods=["GET", "POST"], response_model=ModelsDetailResponse)
    async def list_models_detail() -> ModelsDetailResponse:
        return ModelsDetailResponse(models=registry.models())

    @app.api_route("/list_workers", methods=["GET", "POST"], response_model=ListWorkersResponse)
    async def list_workers() -> ListWorkersResponse:
        return ListWorkersResponse(workers=[w.out() for w in registry.workers.values()])

    @app.post("/refresh_all_workers", response_model=ListWorkersResponse)
    async def refresh_all_workers() -> ListWorkersResponse:
        names = list(registry.workers)
        results = await asyncio.gather(*(fetch_status(client, n) for n in names), return_exceptions=True)
        for name, result in zip(names, results, strict=True):
            entry = registry.workers.get(name)
            if entry is None:
                continue
            if isinstance(result, BaseException):
                registry.remove(name)
                log.warning("worker %s unreachable on refresh; removed", name)
            else:
                registry.register(name, result, entry.check_heart_beat)
        return ListWorkersResponse(workers=[w.out() for w in registry.workers.values()])

    @app.get("/test_connection", response_class=PlainTextResponse)
    async def test_connection() -> str:
        return "success"

    @app.get("/health", response_model=HealthResponse)
    async def health() -> HealthResponse:
        return HealthResponse(detail={"workers": len(registry.workers), "models": [m.id for m in registry.models()]})

    metrics_registry = CollectorRegistry()
    Gauge("kbqa_controller_workers", "Workers registered and alive", registry=metrics_registry).set_function(
        lambda: len(registry.workers)
    )
    Gauge("kbqa_controller_models", "Models served by the registered workers", registry=metrics_registry).set_function(
        lambda: len(registry.models())
    )
    Gauge(
        "kbqa_controller_requests_in_flight", "Requests dispatched and not yet released", registry=metrics_registry
    ).set_function(lambda: sum(w.in_flight for w in registry.workers.values()))
    instrument_app(app, "controller", metrics, metrics_registry, log_settings)
    return app


def main(argv: list[str] | None = None) -> None:
    from kbqa.llm.service_cli import base_parser, run_app, settings_from

    parser = base_parser("kbqa controller: worker registry and dispatch for the OpenAI-compatible server.")
    parser.add_argument("--heartbeat-expiration", type=float, help="seconds without a heartbeat before removal")
    args = parser.parse_args(argv)
    everything = settings_from(args)
    settings = everything.llm.controller
    update = {"host": args.host, "port": args.port, "heartbeat_expiration_s": args.heartbeat_expiration}
    settings = ControllerSettings.model_validate(
        {**settings.model_dump(), **{k: v for k, v in update.items() if v is not None}}
    )
    app = create_app(settings, everything.metrics, everything.logging)
    run_app(app, settings.host, settings.port, args.log_level, everything.logging)


if __name__ == "__main__":
    main()
