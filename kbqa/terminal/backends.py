"""Where ``kbqa chat`` gets its answers: the same transformers backend the worker runs, loaded in this process; any
OpenAI-compatible server; or a knowledge base through the API server's ``/chat/knowledge_base_chat``.

Each backend turns a conversation into a stream of :class:`Delta`. Closing the stream (``close()``, which the chat
loop does on Ctrl-C) stops the generation: the in-process sequence is cancelled, an HTTP response is closed so the
server cancels its side.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import httpx

from kbqa.errors import KBQAError
from kbqa.llm.errors import LLMError, error_from_envelope
from kbqa.sse_events import iter_data

Message = dict[str, str]


@dataclass
class Delta:
    """A piece of the answer; the knowledge-base backend's last one carries the sources instead."""

    text: str = ""
    sources: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class GenerationOptions:
    max_tokens: int | None = None
    temperature: float | None = 0.7  # None only for the KB backend: the API server's default then applies


class ChatBackend(ABC):
    label: str = ""  # what the banner says the answers come from

    @abstractmethod
    def stream(self, messages: list[Message]) -> Generator[Delta, None, None]:
        """The answer to the conversation ``messages`` (last one the user's), as it is generated."""

    def close(self) -> None:  # noqa: B027 - optional hook: HTTP backends hold one client at most
        """Release the model or the connections."""


# -- in-process ----------------------------------------------------------------------------------------------------
class InProcessBackend(ChatBackend):
    """The worker's own backend (``kbqa.llm.backends``), with no HTTP in between.

    The backend is asyncio-based, so it runs on an event loop in a daemon thread; this side reads its events from a
    plain queue, where the main thread stays interruptible by Ctrl-C.
    """

    def __init__(self, model_path: str | None, device: str, options: GenerationOptions) -> None:
        from kbqa.llm.backends.loader import load_backend
        from kbqa.llm.settings import WorkerSettings

        # A terminal wants the model and the answer, not transformers' weight-loading progress bar.
        with contextlib.suppress(ImportError):
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        settings = WorkerSettings(
            model_path=model_path, device=device, register_with_controller=False, max_batch_size=1
        )
        self._backend = load_backend(settings)
        details = self._backend.details
        if details.kind != "chat":
            self._backend.close()
            raise KBQAError(f"{model_path} is an embedding model; kbqa chat needs a chat model")
        self.model = details.model_names[0]
        self.options = options
        self.label = f"{self.model} (in-process, {details.device})"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kbqa-chat-loop", daemon=True)
        self._thread.start()

    def stream(self, messages: list[Message]) -> Generator[Delta, None, None]:
        from kbqa.llm.protocol import GenerateEvent, GenerateRequest, SamplingParams, WorkerMessage

        request = GenerateRequest(
            model=self.model,
            messages=[WorkerMessage(role=m["role"], content=m["content"]) for m in messages],
            params=SamplingParams(temperature=self.options.temperature, max_tokens=self.options.max_tokens),
        )
        events: queue.Queue[GenerateEvent | BaseException | None] = queue.Queue()

        async def pump() -> None:
            stream = await self._backend.generate_stream(request)
            try:
                async for event in stream:
                    events.put(event)
            finally:
                # Also runs when the task is cancelled: the sequence leaves the batch at the next step.
                await stream.aclose()

        def finished(future: concurrent.futures.Future[None]) -> None:
            error = None if future.cancelled() else future.exception()
            events.put(error)

        future = asyncio.run_coroutine_threadsafe(pump(), self._loop)
        future.add_done_callback(finished)
        try:
            while (item := events.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                if item.error is not None:
                    raise error_from_envelope(item.status or 500, {"error": item.error.model_dump()})
                if item.text:
                    yield Delta(item.text)
        finally:
            future.cancel()

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._backend.close()


# -- HTTP ----------------------------------------------------------------------------------------------------------
def _unreachable(what: str, url: str, exc: Exception, hint: str) -> KBQAError:
    return KBQAError(f"cannot reach the {what} at {url} ({type(exc).__name__}): is it running? {hint}")


class OpenAIBackend(ChatBackend):
    """Any OpenAI-compatible server (ours, vLLM, Ollama, a cloud API) through :class:`kbqa.llm.client.LLMClient`."""

    def __init__(self, base_url: str, api_key: str | None, model: str | None, options: GenerationOptions) -> None:
        from pydantic import SecretStr

        from kbqa.llm.client import LLMClient
        from kbqa.llm.settings import ClientSettings

        self.base_url = base_url.rstrip("/")
        settings = ClientSettings(
            base_url=self.base_url,
            api_key=SecretStr(api_key) if api_key else None,
            model=model or "unset",
            temperature=options.temperature,
            max_tokens=options.max_tokens,
            # A person is waiting: say the server is down at once instead of backing off and retrying.
            max_retries=0,
            timeout_s=300,
        )
        self._client = LLMClient(settings)
        try:
            served = self._client.models()
        except httpx.TransportError as exc:
            self._client.close()
            raise _unreachable(
                "OpenAI-compatible server", self.base_url, exc, "(python -m kbqa.llm.openai_server)"
            ) from exc
        except LLMError:
            self._client.close()
            raise
        if model is None:
            if not served:
                self._client.close()
                raise KBQAError(f"{self.base_url} serves no model yet: is a worker running?")
            model = served[0]
        elif model not in served:
            self._client.close()
            raise KBQAError(f"{self.base_url} does not serve {model!r}; it serves: {', '.join(served) or 'nothing'}")
        self.model = model
        self.label = f"{model} at {self.base_url}"

    def stream(self, messages: list[Message]) -> Generator[Delta, None, None]:
        # closing(): when the chat loop closes us (Ctrl-C), the HTTP response closes too and the server cancels.
        with contextlib.closing(self._client.stream_chat(messages, model=self.model)) as deltas:
            for delta in deltas:
                if delta.text:
                    yield Delta(delta.text)
                if delta.sources:  # a knowledge base served as an OpenAI model (kbqa's /kb/v1)
                    yield Delta(sources=delta.sources)

    def close(self) -> None:
        self._client.close()


def _api_error(response: httpx.Response) -> KBQAError:
    try:
        payload = response.json()
        detail = payload.get("msg") or payload.get("detail") or payload
    except ValueError:
        detail = response.text[:300]
    return KBQAError(f"the API server answered HTTP {response.status_code}: {detail}")


class KnowledgeBaseBackend(ChatBackend):
    """Answers from a knowledge base: the API server retrieves, asks the LLM, and cites its sources."""

    def __init__(
        self, api_url: str, api_key: str | None, kb: str, model: str | None, options: GenerationOptions
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.kb = kb
        self.model = model
        self.options = options
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # The read timeout spans the gap between two events; the server pings every api.sse_ping_s (15 s).
        self._http = httpx.Client(base_url=self.api_url, headers=headers, timeout=httpx.Timeout(300, connect=5))
        try:
            r = self._http.get("/knowledge_base/list_knowledge_bases")
        except httpx.TransportError as exc:
            self._http.close()
            raise _unreachable("API server", self.api_url, exc, "(python -m kbqa.api, or pass --api-url)") from exc
        if r.status_code != 200:
            self._http.close()
            raise _api_error(r)
        known = r.json().get("data") or []
        if kb not in known:
            self._http.close()
            there = ", ".join(known) or "none"
            raise KBQAError(f"knowledge base {kb!r} not found at {self.api_url}; there are: {there}")
        self.label = f"knowledge base {kb} at {self.api_url}"

    def stream(self, messages: list[Message]) -> Generator[Delta, None, None]:
        body: dict[str, Any] = {
            "query": messages[-1]["content"],
            "knowledge_base_name": self.kb,
            "history": messages[:-1],
            "stream": True,
            "temperature": self.options.temperature,
            "max_tokens": self.options.max_tokens,
            "model_name": self.model,
        }
        try:
            with self._http.stream("POST", "/chat/knowledge_base_chat", json=body) as r:
                if r.status_code != 200:
                    r.read()
                    raise _api_error(r)
                for data in iter_data(r.iter_lines()):
                    event = json.loads(data)
                    if event.get("answer"):
                        yield Delta(event["answer"])
                    if "sources" in event:
                        yield Delta(sources=event["sources"])
                    if "code" in event and "msg" in event:  # the stream's last event when something failed
                        raise KBQAError(f"the API server stopped the answer: {event['msg']}")
        except httpx.TransportError as exc:
            raise KBQAError(f"lost the API server at {self.api_url}: {exc}") from exc

    def close(self) -> None:
        self._http.close()
