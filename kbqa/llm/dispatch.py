"""How the OpenAI server reaches workers: ask the controller for one, call it, and cope when it is gone.

A worker that cannot be reached, or whose stream breaks off, is reported to the controller (which drops it at once)
and the request is retried on another worker as long as nothing has reached the client yet; after that the client
gets a clean 503. Every dispatch is released at the controller when it ends, so its in-flight counts stay true.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import anyio
import httpx

from kbqa.llm.errors import (
    LLMError,
    ModelNotFound,
    Overloaded,
    UpstreamError,
    WorkerUnavailable,
    error_from_envelope,
)
from kbqa.llm.local_embeddings import LocalEmbedders
from kbqa.llm.protocol import (
    EmbeddingsRequest,
    EmbeddingsResult,
    GenerateEvent,
    GenerateRequest,
    GenerateResult,
    GetWorkerAddressRequest,
    GetWorkerAddressResponse,
    ModelEntry,
    ModelsDetailResponse,
    TokenLogprob,
    WorkerRefRequest,
)
from kbqa.llm.settings import OpenAIServerSettings
from kbqa.observability.request_log import forward_request_id

log = logging.getLogger(__name__)

# Failures that mean "this worker is gone", as opposed to "this worker answered no".
_GONE = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.RemoteProtocolError,
    httpx.ReadError,
    httpx.WriteError,
)


class WorkerGone(WorkerUnavailable):
    """The worker serving a request vanished (connection refused or reset, stream cut off)."""


def _retry_after(response: httpx.Response) -> int | None:
    value = response.headers.get("retry-after")
    return int(value) if value and value.isdigit() else None


async def _raise_for_worker_status(response: httpx.Response) -> None:
    if response.status_code == 200:
        return
    body = await response.aread()
    try:
        payload: Any = httpx.Response(200, content=body).json()
    except ValueError:
        payload = body.decode("utf-8", "replace")
    raise error_from_envelope(response.status_code, payload, _retry_after(response))


class WorkerPool:
    def __init__(self, settings: OpenAIServerSettings, local: LocalEmbedders | None = None) -> None:
        self.settings = settings
        self.local = local  # embedding models run in this process: served without a worker
        # Both pass the request id of the request being served on, so the worker's log lines carry it too.
        hooks = {"request": [forward_request_id]}
        self._controller = httpx.AsyncClient(base_url=settings.controller_address, timeout=10.0, event_hooks=hooks)
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
        self._workers = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.worker_timeout_s, connect=5.0), limits=limits, event_hooks=hooks
        )
        self._models: list[ModelEntry] = []
        self._models_at = 0.0
        self._background: set[asyncio.Task[Any]] = set()

    async def aclose(self) -> None:
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self._controller.aclose()
        await self._workers.aclose()

    # -- controller ---------------------------------------------------------------------------------------------
    async def _controller_post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            r = await self._controller.post(path, json=body)
        except httpx.HTTPError as exc:
            raise WorkerUnavailable(
                f"the controller at {self.settings.controller_address} is unreachable", retry_after=1
            ) from exc
        if r.status_code != 200:
            raise UpstreamError(f"the controller answered {r.status_code} to {path}")
        return r.json()

    async def models(self, fresh: bool = False) -> list[ModelEntry]:
        if fresh or time.monotonic() - self._models_at > self.settings.model_list_ttl_s:
            data = await self._controller_post("/list_models_detail")
            found = ModelsDetailResponse.model_validate(data).models
            if self.local is not None:
                # after the workers' models: clients that take the first listed model expect a chat model
                found = [m for m in found if not self.local.serves(m.id)] + self.local.entries()
            self._models = found
            self._models_at = time.monotonic()
        return self._models

    async def model(self, name: str) -> ModelEntry:
        if self.local is not None and self.local.serves(name):
            return next(e for e in self.local.entries() if e.id == name)
        for fresh in (False, True):
            for entry in await self.models(fresh=fresh):
                if entry.id == name:
                    return entry
        raise ModelNotFound(f"The model {name!r} does not exist or has no live worker", param="model")

    async def _pick(self, model: str, tried: set[str]) -> str:
        data = await self._controller_post(
            "/get_worker_address", GetWorkerAddressRequest(model=model, exclude=sorted(tried)).model_dump()
        )
        address = GetWorkerAddressResponse.model_validate(data).address
        if not address:
            if tried:
                raise WorkerUnavailable(
                    f"no live worker could serve {model!r} (tried {len(tried)})",
                    retry_after=self.settings.retry_after_s,
                )
            raise ModelNotFound(f"The model {model!r} does not exist or has no live worker", param="model")
        return address

    def _fire(self, path: str, body: dict[str, Any]) -> None:
        async def send() -> None:
            try:
                await self._controller.post(path, json=body)
            except httpx.HTTPError as exc:
                log.warning("controller %s failed: %s", path, exc)

        task = asyncio.create_task(send())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _release(self, address: str) -> None:
        self._fire("/release_worker", WorkerRefRequest(worker_name=address).model_dump())

    async def _report_dead(self, address: str, reason: str) -> None:
        log.warning("worker %s failed (%s); asking the controller to drop it", address, reason)
        try:
            await self._controller.post(
                "/remove_worker", json=WorkerRefRequest(worker_name=address, reason=reason).model_dump()
            )
        except httpx.HTTPError as exc:
            log.warning("could not report dead worker %s: %s", address, exc)

    # -- generation ---------------------------------------------------------------------------------------------
    async def open_stream(self, request: GenerateRequest) -> WorkerStream:
        """A started generation on some worker. Raises (with a real status) if none can take it."""
        stream = WorkerStream(self, request)
        await stream.start()
        return stream

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        """A whole completion. Nothing has reached the client yet, so a worker dying at any point is retried."""
        tried: set[str] = set()
        last: LLMError | None = None
        for _ in range(self.settings.dispatch_attempts):
            stream = WorkerStream(self, request, tried=tried)
            try:
                await stream.start()
            except Overloaded as exc:
                last = exc
                break
            try:
                return await stream.collect()
            except WorkerGone as exc:
                last = exc
            finally:
                with anyio.CancelScope(shield=True):
                    await stream.aclose()
        raise last or WorkerUnavailable("no worker could finish the request", retry_after=self.settings.retry_after_s)

    # -- embeddings ---------------------------------------------------------------------------------------------
    async def embed(self, model: str, texts: list[str]) -> EmbeddingsResult:
        if self.local is not None and self.local.serves(model):
            return await self.local.embed(model, texts)
        tried: set[str] = set()
        for _ in range(self.settings.dispatch_attempts):
            address = await self._pick(model, tried)
            tried.add(address)
            try:
                r = await self._workers.post(
                    f"{address}/worker_get_embeddings",
                    json=EmbeddingsRequest(model=model, input=texts).model_dump(),
                )
            except _GONE as exc:
                await self._report_dead(address, f"{type(exc).__name__}")
                continue
            finally:
                self._release(address)
            await _raise_for_worker_status(r)
            return EmbeddingsResult.model_validate(r.json())
        raise WorkerUnavailable(f"no live worker could embed with {model!r}", retry_after=self.settings.retry_after_s)


class WorkerStream:
    """Events of one generation on one worker, with failover to another worker until the first event is out."""

    def __init__(self, pool: WorkerPool, request: GenerateRequest, tried: set[str] | None = None) -> None:
        self._pool = pool
        self._request = request
        self._tried = tried if tried is not None else set()
        self._address: str | None = None
        self._response: httpx.Response | None = None
        self._lines: Any = None
        self._delivered = False

    async def start(self) -> None:
        pool = self._pool
        busy: LLMError | None = None
        for _ in range(pool.settings.dispatch_attempts):
            try:
                address = await pool._pick(self._request.model, self._tried)
            except (WorkerUnavailable, ModelNotFound):
                if busy is not None:
                    raise busy from None
                raise
            self._tried.add(address)
            try:
                response = await pool._workers.send(
                    pool._workers.build_request(
                        "POST", f"{address}/worker_generate_stream", json=self._request.model_dump()
                    ),
                    stream=True,
                )
            except _GONE as exc:
                pool._release(address)
                await pool._report_dead(address, type(exc).__name__)
                continue
            try:
                await _raise_for_worker_status(response)
            except Overloaded as exc:
                # Full queue there; another worker may have room.
                await response.aclose()
                pool._release(address)
                busy = exc
                continue
            except BaseException:
                await response.aclose()
                pool._release(address)
                raise
            self._address, self._response = address, response
            self._lines = response.aiter_lines()
            return
        if busy is not None:
            raise busy
        raise WorkerUnavailable(
            f"no live worker could serve {self._request.model!r}", retry_after=pool.settings.retry_after_s
        )

    async def _next_raw(self) -> GenerateEvent:
        assert self._lines is not None and self._address is not None
        try:
            while True:
                line = await self._lines.__anext__()
                if line.strip():
                    return GenerateEvent.model_validate_json(line)
        except StopAsyncIteration:
            reason = "stream ended without a finish event"
        except _GONE as exc:
            reason = type(exc).__name__
        address = self._address
        await self._end()
        await self._pool._report_dead(address, reason)
        raise WorkerGone(
            f"worker {address} stopped mid-generation ({reason})",
            retry_after=self._pool.settings.retry_after_s,
        )

    async def next_event(self) -> GenerateEvent:
        """The next event; fails over to another worker while nothing has been delivered."""
        while True:
            try:
                event = await self._next_raw()
            except WorkerGone:
                if self._delivered:
                    raise
                await self.start()
                continue
            self._delivered = True
            if event.finish_reason is not None or event.error is not None:
                await self._end()
            return event

    async def collect(self) -> GenerateResult:
        parts: list[str] = []
        logprobs: list[TokenLogprob] | None = None
        while True:
            event = await self._next_raw()
            if event.error is not None:
                await self._end()
                raise error_from_envelope(event.status or 500, {"error": event.error.model_dump()})
            parts.append(event.text)
            if event.logprobs is not None:
                logprobs = logprobs if logprobs is not None else []
                logprobs.extend(event.logprobs)
            if event.finish_reason is not None:
                await self._end()
                assert event.usage is not None
                return GenerateResult(
                    text="".join(parts), logprobs=logprobs, finish_reason=event.finish_reason, usage=event.usage
                )

    async def _end(self) -> None:
        if self._response is not None:
            response, self._response = self._response, None
            await response.aclose()
            assert self._address is not None
            self._pool._release(self._address)

    async def aclose(self) -> None:
        """Closing the connection makes the worker cancel the generation."""
        await self._end()
