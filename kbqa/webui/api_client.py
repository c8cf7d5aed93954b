"""The web UI's only way to data: a typed HTTP client for the kbqa API server.

Every failure (server down, wrong key, refused request, broken stream) becomes one :class:`ApiClientError` whose
message can be shown to a person as it is; the pages never see an httpx exception or a stack trace.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import IO, Any
from urllib.parse import urlencode

import httpx
from pydantic import TypeAdapter, ValidationError

from kbqa.sse_events import iter_data
from kbqa.webui.models import (
    ChatEvent,
    Chunk,
    Job,
    JobAccepted,
    KBFile,
    KeyRights,
    KnowledgeBase,
    ServerConfig,
    Source,
    TempUpload,
)

UploadItem = tuple[str, bytes | IO[bytes]]  # (file name, possibly with sub-folders; content)

_KBS = TypeAdapter(list[KnowledgeBase])
_FILES = TypeAdapter(list[KBFile])
_CHUNKS = TypeAdapter(list[Chunk])
_SOURCES = TypeAdapter(list[Source])
_JOB = TypeAdapter(Job)
_JOBS = TypeAdapter(list[Job])
_SERVER_CONFIG = TypeAdapter(ServerConfig)
_RIGHTS = TypeAdapter(KeyRights)


class ApiClientError(Exception):
    """A request to the API server failed; ``message`` says why in words meant for the user."""

    def __init__(self, message: str, *, status: int | None = None, unreachable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.unreachable = unreachable  # no answer at all: connection refused, reset or timed out


class KBQAClient:
    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout_s: float = 30.0,
        stream_timeout_s: float = 600.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.has_key = bool(api_key)
        # Tells cached per-key answers (the key's rights) apart without keeping the key in the session state.
        self.key_id = hashlib.sha256((api_key or "").encode()).hexdigest()[:16]
        self.timeout_s = timeout_s
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout_s, transport=transport, trust_env=False
        )
        # Streams and uploads wait longer between bytes: a CPU model can take a while before its first token.
        self._long = httpx.Timeout(timeout_s, read=stream_timeout_s, write=stream_timeout_s)

    def close(self) -> None:
        self._http.close()

    # --- plumbing -----------------------------------------------------------------------------------------------
    def _transport_error(self, exc: httpx.HTTPError) -> ApiClientError:
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return ApiClientError(
                f"Cannot reach the API server at {self.base_url}. Is it running? Start it with "
                "`python -m kbqa.api` (or `python startup.py -a`), or correct the API address in the sidebar.",
                unreachable=True,
            )
        if isinstance(exc, httpx.TimeoutException):
            return ApiClientError(
                f"The API server at {self.base_url} did not answer in time ({type(exc).__name__}).", unreachable=True
            )
        return ApiClientError(f"The connection to the API server at {self.base_url} failed: {exc}", unreachable=True)

    def _status_error(self, response: httpx.Response) -> ApiClientError:
        status = response.status_code
        if status == 401:
            if self.has_key:
                hint = "The API server refused the API key: correct it in the sidebar (or KBQA_WEBUI__API_KEY)."
            else:
                hint = "The API server requires an API key: enter it in the sidebar (or set KBQA_WEBUI__API_KEY)."
            return ApiClientError(hint, status=status)
        try:
            body = json.loads(response.read() or b"null")
        except ValueError:
            body = None
        msg = ""
        if isinstance(body, dict):
            msg = str(body.get("msg") or body.get("detail") or "")
            data = body.get("data")
            if isinstance(data, dict) and data.get("detail"):
                msg = f"{msg}: {data['detail']}"
        if not msg:
            msg = f"unexpected answer from {response.request.url}"
        return ApiClientError(f"{msg} (HTTP {status})", status=status)

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc
        if response.status_code >= 400:
            raise self._status_error(response)
        return response

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise ApiClientError(
                f"{response.request.url} did not answer with JSON: is the API address that of a kbqa server?"
            ) from exc

    def _data(self, method: str, path: str, **kwargs: Any) -> Any:
        """The ``data`` of a Chatchat ``{code, msg, data}`` answer; a ``code`` other than 200 is an error."""
        body = self._json(self._send(method, path, **kwargs))
        if not isinstance(body, dict) or "code" not in body:
            raise ApiClientError(f"unexpected answer from {self.base_url}{path}: is this a kbqa API server?")
        if body["code"] != 200:
            raise ApiClientError(str(body.get("msg") or f"request failed (code {body['code']})"))
        return body.get("data")

    @staticmethod
    def _parse(adapter: TypeAdapter[Any], value: Any) -> Any:
        try:
            return adapter.validate_python(value)
        except ValidationError as exc:
            raise ApiClientError(f"the API server answered in an unexpected shape: {exc.errors()[0]['msg']}") from exc

    @contextmanager
    def _stream(self, path: str, body: Mapping[str, Any]) -> Iterator[Iterator[dict[str, Any]]]:
        """POST ``body`` and yield the JSON events of the SSE answer. An error event (``{"code": 5xx, "msg"}``,
        sent when a failure comes after the response started) is raised as an :class:`ApiClientError`."""
        try:
            with self._http.stream("POST", path, json=dict(body), timeout=self._long) as response:
                if response.status_code >= 400:
                    raise self._status_error(response)
                yield self._events(response)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc

    def _events(self, response: httpx.Response) -> Iterator[dict[str, Any]]:
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            payloads: Iterator[str] = iter_data(response.iter_lines())
        else:  # a plain JSON answer (Chatchat answered some errors so) counts as one event
            payloads = iter([response.read().decode("utf-8", "replace")])
        for data in payloads:
            try:
                event = json.loads(data)
            except ValueError as exc:
                raise ApiClientError(f"the API server sent a malformed event: {data[:80]!r}") from exc
            if not isinstance(event, dict):
                continue
            code = event.get("code")
            if isinstance(code, int) and code >= 400 and "msg" in event and "doc" not in event:
                raise ApiClientError(str(event["msg"]), status=code)
            yield event

    # --- server -------------------------------------------------------------------------------------------------
    def health(self) -> None:
        """Raises unless the API server answers (the key is checked too: every route needs it when one is set)."""
        self._send("GET", "/health")

    def rights(self) -> KeyRights:
        """The key's scope; a server without /auth/whoami (404) has none, so everything stays shown."""
        try:
            return self._parse(_RIGHTS, self._data("GET", "/auth/whoami"))
        except ApiClientError as exc:
            if exc.status == 404:
                return KeyRights()
            raise

    def server_config(self) -> ServerConfig:
        return self._parse(_SERVER_CONFIG, self._json(self._send("POST", "/server/configs")))

    def running_models(self) -> list[str]:
        """Chat models the LLM side serves now (the controller's or the endpoint's list), embedding ones left out."""
        data = self._data("POST", "/llm_model/list_running_models", json={})
        if not isinstance(data, dict):
            return []
        return [name for name, cfg in data.items() if not (isinstance(cfg, dict) and cfg.get("kind") == "embedding")]

    def config_models(self) -> list[str]:
        data = self._data("POST", "/llm_model/list_config_models", json={})
        names: list[str] = []
        for group in (data or {}).values():
            names += [n for n in group if n not in names]
        return names

    # --- knowledge bases ----------------------------------------------------------------------------------------
    def knowledge_bases(self) -> list[KnowledgeBase]:
        return self._parse(_KBS, self._data("GET", "/knowledge_base/list_kb_details"))

    def create_knowledge_base(
        self, name: str, *, info: str | None = None, vs_type: str | None = None, embed_model: str | None = None
    ) -> str:
        body = {
            "knowledge_base_name": name,
            "kb_info": info or None,
            "vector_store_type": vs_type,
            "embed_model": embed_model,
        }
        self._data("POST", "/knowledge_base/create_knowledge_base", json=body)
        return name

    def delete_knowledge_base(self, name: str) -> None:
        self._data("POST", "/knowledge_base/delete_knowledge_base", json={"knowledge_base_name": name})

    def update_info(self, name: str, info: str) -> None:
        self._data("POST", "/knowledge_base/update_info", json={"knowledge_base_name": name, "kb_info": info})

    # --- files --------------------------------------------------------------------------------------------------
    def files(self, kb: str) -> list[KBFile]:
        params = {"knowledge_base_name": kb}
        return self._parse(_FILES, self._data("GET", "/knowledge_base/list_file_details", params=params))

    def upload(
        self,
        kb: str,
        files: Sequence[UploadItem],
        *,
        override: bool = False,
        chunk_size: int | None = None,
        chunk_overlap: int | None = None,
        zh_title_enhance: bool | None = None,
    ) -> JobAccepted:
        """Save the files and index them in a background job (follow it with :meth:`follow_job`)."""
        form: dict[str, Any] = {"knowledge_base_name": kb, "override": str(override).lower(), "background": "true"}
        for key, value in (("chunk_size", chunk_size), ("chunk_overlap", chunk_overlap)):
            if value is not None:
                form[key] = str(value)
        if zh_title_enhance is not None:
            form["zh_title_enhance"] = str(zh_title_enhance).lower()
        parts = [("files", (name, content, "application/octet-stream")) for name, content in files]
        data = self._data("POST", "/knowledge_base/upload_docs", data=form, files=parts, timeout=self._long)
        return self._accepted(data)

    def _accepted(self, data: Any) -> JobAccepted:
        if not isinstance(data, dict) or not data.get("job_id"):
            raise ApiClientError("the API server did not start a background job")
        return JobAccepted(str(data["job_id"]), dict(data.get("failed_files") or {}))

    def reindex(self, kb: str, paths: Sequence[str]) -> JobAccepted:
        body = {"knowledge_base_name": kb, "file_names": list(paths), "background": True}
        return self._accepted(self._data("POST", "/knowledge_base/update_docs", json=body))

    def delete_files(self, kb: str, paths: Sequence[str], *, delete_content: bool = False) -> dict[str, str]:
        body = {"knowledge_base_name": kb, "file_names": list(paths), "delete_content": delete_content}
        data = self._data("POST", "/knowledge_base/delete_docs", json=body)
        return dict((data or {}).get("failed_files") or {})

    def job(self, job_id: str) -> Job:
        return self._parse(_JOB, self._data("GET", f"/jobs/{job_id}"))

    def jobs(self) -> list[Job]:
        """The server's recent background jobs, newest first, without per-file detail."""
        return self._parse(_JOBS, self._data("GET", "/jobs"))

    def cancel_job(self, job_id: str) -> Job:
        """Ask a background job to stop (a running one stops after its current batch of files)."""
        return self._parse(_JOB, self._data("POST", f"/jobs/{job_id}/cancel"))

    def follow_job(self, job_id: str, interval_s: float = 0.5, reconnect_s: float = 60.0) -> Iterator[Job]:
        """Snapshots of a job until it has finished (the last one yielded is finished).

        While the API server cannot be reached (restarting, say), it keeps asking for up to ``reconnect_s``: job
        records outlive a restart, so the job is then seen finished, or ``interrupted`` if the restart cut it off."""
        unreachable_since: float | None = None
        while True:
            try:
                job = self.job(job_id)
            except ApiClientError as exc:
                if not exc.unreachable:  # the server answered: retrying would not change its answer
                    raise
                unreachable_since = unreachable_since or time.monotonic()
                if time.monotonic() - unreachable_since > reconnect_s:
                    raise
                time.sleep(interval_s)
                continue
            unreachable_since = None
            yield job
            if job.done:
                return
            time.sleep(interval_s)

    def rebuild(self, kb: str) -> JobAccepted:
        """Rebuild the KB's index from its content folder, as a background job (progress and cancel like uploads)."""
        body = {"knowledge_base_name": kb, "background": True}
        return self._accepted(self._data("POST", "/knowledge_base/recreate_vector_store", json=body))

    def download(self, kb: str, path: str) -> bytes:
        params = {"knowledge_base_name": kb, "file_name": path}
        return self._send("GET", "/knowledge_base/download_doc", params=params, timeout=self._long).content

    def download_url(self, kb: str, path: str) -> str:
        query = urlencode({"knowledge_base_name": kb, "file_name": path})
        return f"{self.base_url}/knowledge_base/download_doc?{query}"

    # --- search -------------------------------------------------------------------------------------------------
    def search(
        self, kb: str, query: str, *, top_k: int | None = None, score_threshold: float | None = None
    ) -> list[Chunk]:
        body = {"knowledge_base_name": kb, "query": query, "top_k": top_k, "score_threshold": score_threshold}
        return self._parse(_CHUNKS, self._json(self._send("POST", "/knowledge_base/search_docs", json=body)))

    def file_chunks(self, kb: str, path: str) -> list[Chunk]:
        """Every chunk of one file, in order (search_docs without a query lists them)."""
        body = {"knowledge_base_name": kb, "query": "", "file_name": path}
        chunks = self._parse(_CHUNKS, self._json(self._send("POST", "/knowledge_base/search_docs", json=body)))
        return sorted(chunks, key=lambda c: c.ordinal if c.ordinal is not None else 0)

    # --- chat ---------------------------------------------------------------------------------------------------
    def _chat(self, path: str, body: dict[str, Any]) -> Iterator[ChatEvent]:
        body = {k: v for k, v in body.items() if v is not None}
        with self._stream(path, {**body, "stream": True}) as events:
            for event in events:
                sources = event.get("sources")
                yield ChatEvent(
                    text=str(event.get("answer") or event.get("text") or ""),
                    message_id=event.get("message_id"),
                    sources=self._parse(_SOURCES, sources) if sources is not None else None,
                    docs=event.get("docs"),
                )

    def llm_chat(
        self,
        query: str,
        *,
        history: Sequence[Mapping[str, str]] = (),
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        conversation_id: str | None = None,
    ) -> Iterator[ChatEvent]:
        body = {"query": query, "history": list(history), "model_name": model, "temperature": temperature}
        body |= {"max_tokens": max_tokens, "conversation_id": conversation_id}
        return self._chat("/chat/chat", body)

    def kb_chat(
        self,
        query: str,
        kb: str,
        *,
        top_k: int | None = None,
        score_threshold: float | None = None,
        history: Sequence[Mapping[str, str]] = (),
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        conversation_id: str | None = None,
    ) -> Iterator[ChatEvent]:
        body = {"query": query, "knowledge_base_name": kb, "top_k": top_k, "score_threshold": score_threshold}
        body |= {"history": list(history), "model_name": model, "temperature": temperature, "max_tokens": max_tokens}
        body["conversation_id"] = conversation_id
        return self._chat("/chat/knowledge_base_chat", body)

    def upload_temp(self, files: Sequence[UploadItem], *, prev_id: str | None = None) -> TempUpload:
        parts = [("files", (name, content, "application/octet-stream")) for name, content in files]
        form = {"prev_id": prev_id} if prev_id else {}
        data = self._data("POST", "/knowledge_base/upload_temp_docs", data=form, files=parts, timeout=self._long)
        if not isinstance(data, dict) or not data.get("id"):
            raise ApiClientError("the API server did not return an id for the uploaded files")
        return TempUpload(str(data["id"]), list(data.get("failed_files") or []))

    def file_chat(
        self,
        query: str,
        knowledge_id: str,
        *,
        top_k: int | None = None,
        score_threshold: float | None = None,
        history: Sequence[Mapping[str, str]] = (),
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        conversation_id: str | None = None,
    ) -> Iterator[ChatEvent]:
        body = {"query": query, "knowledge_id": knowledge_id, "top_k": top_k, "score_threshold": score_threshold}
        body |= {"history": list(history), "model_name": model, "temperature": temperature, "max_tokens": max_tokens}
        body["conversation_id"] = conversation_id
        return self._chat("/chat/file_chat", body)

    def feedback(self, message_id: str, score: int, reason: str = "") -> None:
        self._data("POST", "/chat/feedback", json={"message_id": message_id, "score": score, "reason": reason})
