"""The seam between the worker's routes and a model: a backend implements ``generate_stream`` or ``embed``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass

from kbqa.llm.errors import Unsupported
from kbqa.llm.protocol import (
    CountTokensRequest,
    EmbeddingsResult,
    GenerateEvent,
    GenerateRequest,
    ModelDetails,
)


@dataclass(frozen=True, slots=True)
class BackendStats:
    """Load figures for the worker's metrics. None: the backend does not know it (the worker then counts requests by
    what it saw of their streams: waiting until the first token, running after it)."""

    running: int | None = None  # sequences in the batch being decoded
    waiting: int | None = None  # sequences queued for a batch slot
    kv_cache_bytes: int | None = None  # memory held by the KV cache


class EventStream(AsyncIterator[GenerateEvent]):
    """An async iterator of generation events that can be cancelled with ``aclose``."""

    async def aclose(self) -> None:  # pragma: no cover - overridden
        return None


class ModelBackend(ABC):
    """One loaded model. The worker adds HTTP, registration and heartbeats around it."""

    @property
    @abstractmethod
    def details(self) -> ModelDetails: ...

    @abstractmethod
    def queue_length(self) -> int:
        """Requests running or waiting: the load figure sent to the controller."""

    async def generate_stream(self, request: GenerateRequest) -> EventStream:
        """Validate and queue ``request``; the returned stream yields text deltas, the last one carrying
        ``finish_reason`` and ``usage``.

        Anything wrong with the request raises here, before a stream exists, so the worker can answer with a real
        status. Closing the stream (``aclose``) cancels the work, even if it was never iterated.
        """
        raise Unsupported(f"model {self.details.model_names[0]!r} does not generate text", param="model")

    async def embed(self, texts: list[str]) -> EmbeddingsResult:
        raise Unsupported(f"model {self.details.model_names[0]!r} does not produce embeddings", param="model")

    def count_tokens(self, request: CountTokensRequest) -> int:
        raise Unsupported(f"model {self.details.model_names[0]!r} cannot count tokens")

    def stats(self) -> BackendStats:
        """What the backend knows of its load, for /metrics; the default knows nothing beyond queue_length."""
        return BackendStats()

    def close(self) -> None:  # noqa: B027 - optional hook: most backends hold nothing to release
        """Release threads and memory."""
