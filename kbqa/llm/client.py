"""The one way kbqa reaches an LLM: any OpenAI-compatible endpoint (ours, vLLM, Ollama, a cloud API).

Which endpoint is a settings change only (``llm.client.base_url``, ``api_key``, ``model``). Both a blocking and an
asyncio client are offered; they share request building and response parsing. Errors come back as
:class:`kbqa.llm.errors.LLMError` subclasses with the endpoint's HTTP status, so callers map them like any other.

    client = LLMClient(settings.llm.client)
    answer = client.chat([{"role": "user", "content": "Hi"}]).text
    for delta in client.stream_chat(messages):
        ...
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from kbqa.llm.errors import LLMError, UpstreamError, WorkerUnavailable, error_from_envelope
from kbqa.llm.settings import ClientSettings
from kbqa.observability.request_log import forward_request_id, forward_request_id_sync

Message = dict[str, Any]
_RETRY_STATUSES = {429, 503}


@dataclass
class ChatResult:
    text: str
    finish_reason: str | None
    usage: dict[str, int] = field(default_factory=dict)
    model: str = ""
    # OpenAI's choices[0].logprobs.content when the request asked for logprobs: [{token, logprob, top_logprobs}].
    logprobs: list[dict[str, Any]] | None = None


@dataclass
class StreamDelta:
    text: str
    finish_reason: str | None = None
    usage: dict[str, int] | None = None
    # Not OpenAI's: the cited passages a kbqa knowledge base (/kb/v1) sends with its last chunk.
    sources: list[dict[str, Any]] | None = None


def _headers(settings: ClientSettings) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if settings.api_key is not None and settings.api_key.get_secret_value():
        headers["Authorization"] = f"Bearer {settings.api_key.get_secret_value()}"
    return headers


def _chat_body(settings: ClientSettings, messages: list[Message], stream: bool, options: dict[str, Any]) -> dict:
    body: dict[str, Any] = {"model": settings.model, "messages": messages, "temperature": settings.temperature}
    if settings.max_tokens is not None:
        body["max_tokens"] = settings.max_tokens
    body.update({k: v for k, v in options.items() if v is not None})
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def _error(response_status: int, payload: Any, retry_after: str | None) -> LLMError:
    seconds = int(retry_after) if retry_after and retry_after.isdigit() else None
    return error_from_envelope(response_status, payload, seconds)


def _payload(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return content.decode("utf-8", "replace")


def _chat_result(data: dict[str, Any]) -> ChatResult:
    try:
        choice = data["choices"][0]
        return ChatResult(
            text=choice["message"].get("content") or "",
            finish_reason=choice.get("finish_reason"),
            usage=data.get("usage") or {},
            model=data.get("model", ""),
            logprobs=(choice.get("logprobs") or {}).get("content"),
        )
    except (KeyError, IndexError, TypeError) as exc:
        raise UpstreamError(f"malformed chat completion from the endpoint: {str(data)[:300]}") from exc


def _parse_sse(line: str) -> StreamDelta | None:
    """One SSE line → a delta, None for comments/blank lines/[DONE]; raises on an error event."""
    if not line.startswith("data:"):
        return None
    data = line[5:].strip()
    if not data or data == "[DONE]":
        return None
    chunk = json.loads(data)
    if "error" in chunk:
        err = chunk["error"] if isinstance(chunk["error"], dict) else {"message": str(chunk["error"])}
        status = {"rate_limit_error": 429, "invalid_request_error": 400}.get(str(err.get("type")), 503)
        raise error_from_envelope(status, {"error": err})
    choices = chunk.get("choices") or []
    sources = chunk.get("sources") if isinstance(chunk.get("sources"), list) else None
    if not choices:
        return StreamDelta("", usage=chunk.get("usage"), sources=sources)
    choice = choices[0]
    return StreamDelta(
        (choice.get("delta") or {}).get("content") or "", choice.get("finish_reason"), chunk.get("usage"), sources
    )


def _backoff(attempt: int, error: LLMError | None) -> float:
    if error is not None and error.retry_after is not None:
        return float(min(error.retry_after, 30))
    return min(0.5 * 2**attempt, 8.0)


class LLMClient:
    """Blocking client."""

    def __init__(self, settings: ClientSettings, http: httpx.Client | None = None) -> None:
        self.settings = settings
        self._http = http or httpx.Client(
            base_url=settings.base_url.rstrip("/") + "/",
            timeout=settings.timeout_s,
            headers=_headers(settings),
            event_hooks={"request": [forward_request_id_sync]},  # the caller's request id goes on to the LLM
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        last: LLMError | None = None
        for attempt in range(self.settings.max_retries + 1):
            if attempt:
                time.sleep(_backoff(attempt - 1, last))
            try:
                r = self._http.post(path, json=body)
            except httpx.TransportError as exc:
                last = WorkerUnavailable(f"cannot reach {self.settings.base_url}: {exc}")
                continue
            if r.status_code == 200:
                return r.json()
            last = _error(r.status_code, _payload(r.content), r.headers.get("retry-after"))
            if r.status_code not in _RETRY_STATUSES:
                raise last
        assert last is not None
        raise last

    def chat(self, messages: list[Message], **options: Any) -> ChatResult:
        """One completion. ``options`` are OpenAI fields (model, temperature, max_tokens, stop, seed, ...)."""
        return _chat_result(self._post("chat/completions", _chat_body(self.settings, messages, False, options)))

    def stream_chat(self, messages: list[Message], **options: Any) -> Iterator[StreamDelta]:
        """Text deltas as they are generated; the last ones carry ``finish_reason`` and ``usage``."""
        body = _chat_body(self.settings, messages, True, options)
        last: LLMError | None = None
        for attempt in range(self.settings.max_retries + 1):
            if attempt:
                time.sleep(_backoff(attempt - 1, last))
            try:
                with self._http.stream("POST", "chat/completions", json=body) as r:
                    if r.status_code != 200:
                        last = _error(r.status_code, _payload(r.read()), r.headers.get("retry-after"))
                        if r.status_code in _RETRY_STATUSES:
                            continue
                        raise last
                    for line in r.iter_lines():
                        delta = _parse_sse(line)
                        if delta is not None:
                            yield delta
                    return
            except httpx.TransportError as exc:
                # Retrying after deltas went out would repeat text; only a failed connection is retried.
                if isinstance(exc, httpx.ConnectError):
                    last = WorkerUnavailable(f"cannot reach {self.settings.base_url}: {exc}")
                    continue
                raise WorkerUnavailable(f"the stream from {self.settings.base_url} broke off: {exc}") from exc
        assert last is not None
        raise last

    def complete(self, prompt: str, **options: Any) -> ChatResult:
        body = {"model": self.settings.model, "prompt": prompt, **{k: v for k, v in options.items() if v is not None}}
        data = self._post("completions", body)
        choice = data["choices"][0]
        return ChatResult(choice.get("text") or "", choice.get("finish_reason"), data.get("usage") or {}, data["model"])

    def embed(self, texts: list[str], model: str | None = None) -> list[list[float]]:
        data = self._post("embeddings", {"model": model or self.settings.embedding_model, "input": texts})
        return [d["embedding"] for d in sorted(data["data"], key=lambda d: d["index"])]

    def models(self) -> list[str]:
        r = self._http.get("models")
        if r.status_code != 200:
            raise _error(r.status_code, _payload(r.content), r.headers.get("retry-after"))
        return [m["id"] for m in r.json()["data"]]


class AsyncLLMClient:
    """asyncio client with the same methods as :class:`LLMClient`."""

    def __init__(self, settings: ClientSettings, http: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self._http = http or httpx.AsyncClient(
            base_url=settings.base_url.rstrip("/") + "/",
            timeout=settings.timeout_s,
            headers=_headers(settings),
            event_hooks={"request": [forward_request_id]},  # the caller's request id goes on to the LLM
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncLLMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        last: LLMError | None = None
        for attempt in range(self.settings.max_retries + 1):
            if attempt:
                await asyncio.sleep(_backoff(attempt - 1, last))
            try:
                r = await self._http.post(path, json=body)
            except httpx.TransportError as exc:
                last = WorkerUnavailable(f"cannot reach {self.settings.base_url}: {exc}")
                continue
            if r.status_code == 200:
                return r.json()
            last = _error(r.status_code, _payload(r.content), r.headers.get("retry-after"))
            if r.status_code not in _RETRY_STATUSES:
                raise last
        assert last is not None
        raise last

    async def chat(self, messages: list[Message], **options: Any) -> ChatResult:
        return _chat_result(await self._post("chat/completions", _chat_body(self.settings, messages, False, options)))

    async def stream_chat(self, messages: list[Message], **options: Any) -> AsyncIterator[StreamDelta]:
        body = _chat_body(self.settings, messages, True, options)
        last: LLMError | None = None
        for attempt in range(self.settings.max_retries + 1):
            if attempt:
                await asyncio.sleep(_backoff(attempt - 1, last))
            try:
                async with self._http.stream("POST", "chat/completions", json=body) as r:
                    if r.status_code != 200:
                        last = _error(r.status_code, _payload(await r.aread()), r.headers.get("retry-after"))
                        if r.status_code in _RETRY_STATUSES:
                            continue
                        raise last
                    async for line in r.aiter_lines():
                        delta = _parse_sse(line)
                        if delta is not None:
                            yield delta
                    return
            except httpx.TransportError as exc:
                if isinstance(exc, httpx.ConnectError):
                    last = WorkerUnavailable(f"cannot reach {self.settings.base_url}: {exc}")
                    continue
                raise WorkerUnavailable(f"the stream from {self.settings.base_url} broke off: {exc}") from exc
        assert last is not None
        raise last

    async def complete(self, prompt: str, **options: Any) -> ChatResult:
        body = {"model": self.settings.model, "prompt": prompt, **{k: v for k, v in options.items() if v is not None}}
        data = await self._post("completions", body)
        choice = data["choices"][0]
        return ChatResult(choice.get("text") or "", choice.get("finish_reason"), data.get("usage") or {}, data["model"])

    async def embed(self, texts: list[str], model: str | None = None) -> list[list[float]]:
        data = await self._post("embeddings", {"model": model or self.settings.embedding_model, "input": texts})
        return [d["embedding"] for d in sorted(data["data"], key=lambda d: d["index"])]

    async def models(self) -> list[str]:
        r = await self._http.get("models")
        if r.status_code != 200:
            raise _error(r.status_code, _payload(r.content), r.headers.get("retry-after"))
        return [m["id"] for m in r.json()["data"]]
