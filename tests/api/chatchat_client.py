"""A client that makes the HTTP calls Chatchat 0.2.10's web UI client (``webui_pages/utils.py``, ``ApiRequest``)
makes: one method per ApiRequest method, with its URL, HTTP method, body fields (names, defaults, ``None``s and
all) and way of reading the answer. Written for these tests from the call list, so that a route or a body field
the web UI of that version depends on cannot drift away unnoticed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx

# Chatchat 0.2.10's configs defaults, which its ApiRequest sends when the caller gives nothing.
VECTOR_SEARCH_TOP_K = 3
SCORE_THRESHOLD = 1.0
CHUNK_SIZE = 250
OVERLAP_SIZE = 50
ZH_TITLE_ENHANCE = False
TEMPERATURE = 0.7
DEFAULT_VS_TYPE = "faiss"


class ChatchatClient:
    def __init__(self, base_url: str, llm_model: str, embed_model: str, timeout: float = 300) -> None:
        """``llm_model`` and ``embed_model`` stand for LLM_MODELS[0] and EMBEDDING_MODEL of a Chatchat configs
        folder pointed at this server."""
        self.http = httpx.Client(base_url=base_url, timeout=timeout)
        self.llm_model = llm_model
        self.embed_model = embed_model

    def close(self) -> None:
        self.http.close()

    # -- how ApiRequest reads answers -------------------------------------------------------------------------------
    @staticmethod
    def _json(r: httpx.Response) -> Any:
        try:
            return r.json()
        except ValueError as exc:
            return {"code": 500, "msg": f"not JSON: {exc}", "data": None}

    def _stream(self, path: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """SSE or bare JSON chunks, as ApiRequest parses them (one chunk, one event; ``:`` comments skipped)."""
        with self.http.stream("POST", path, json=body) as r:
            for chunk in r.iter_text():
                if not chunk:
                    continue
                if chunk.startswith(":"):
                    continue
                yield json.loads(chunk[6:-2] if chunk.startswith("data: ") else chunk)

    # -- server ---------------------------------------------------------------------------------------------------
    def get_server_configs(self) -> Any:
        return self._json(self.http.post("/server/configs"))

    def list_search_engines(self) -> Any:
        return self._json(self.http.post("/server/list_search_engines"))["data"]

    def get_prompt_template(self, type: str = "llm_chat", name: str = "default") -> str:
        return self.http.post("/server/get_prompt_template", json={"type": type, "name": name}).text

    # -- chat -----------------------------------------------------------------------------------------------------
    def _llm_fields(self, history: list[dict[str, Any]] | None, stream: bool) -> dict[str, Any]:
        return {
            "history": history or [],
            "stream": stream,
            "model_name": self.llm_model,
            "temperature": TEMPERATURE,
            "max_tokens": None,
            "prompt_name": "default",
        }

    def chat_chat(self, query: str, stream: bool = True, history: list[dict[str, Any]] | None = None) -> list[dict]:
        body = {"query": query, "conversation_id": None, "history_len": -1, **self._llm_fields(history, stream)}
        return list(self._stream("/chat/chat", body))

    def agent_chat(self, query: str, stream: bool = True) -> list[dict]:
        body = {"query": query, **self._llm_fields(None, stream)}
        return list(self._stream("/chat/agent_chat", body))

    def knowledge_base_chat(self, query: str, knowledge_base_name: str, stream: bool = True) -> list[dict]:
        body = {
            "query": query,
            "knowledge_base_name": knowledge_base_name,
            "top_k": VECTOR_SEARCH_TOP_K,
            "score_threshold": SCORE_THRESHOLD,
            **self._llm_fields(None, stream),
        }
        return list(self._stream("/chat/knowledge_base_chat", body))

    def upload_temp_docs(self, files: dict[str, bytes], knowledge_id: str | None = None) -> Any:
        data = {
            "knowledge_id": knowledge_id,
            "chunk_size": CHUNK_SIZE,
            "chunk_overlap": OVERLAP_SIZE,
            "zh_title_enhance": ZH_TITLE_ENHANCE,
        }
        parts = [("files", (name, content)) for name, content in files.items()]
        return self._json(self.http.post("/knowledge_base/upload_temp_docs", data=data, files=parts))

    def file_chat(self, query: str, knowledge_id: str, stream: bool = True) -> list[dict]:
        body = {
            "query": query,
            "knowledge_id": knowledge_id,
            "top_k": VECTOR_SEARCH_TOP_K,
            "score_threshold": SCORE_THRESHOLD,
            **self._llm_fields(None, stream),
        }
        return list(self._stream("/chat/file_chat", body))

    def search_engine_chat(self, query: str, search_engine_name: str, stream: bool = True) -> list[dict]:
        body = {
            "query": query,
            "search_engine_name": search_engine_name,
            "top_k": 3,
            "split_result": False,
            **self._llm_fields(None, stream),
        }
        return list(self._stream("/chat/search_engine_chat", body))

    def chat_feedback(self, message_id: str, score: int, reason: str = "") -> httpx.Response:
        return self.http.post("/chat/feedback", json={"message_id": message_id, "score": score, "reason": reason})

    # -- knowledge bases ------------------------------------------------------------------------------------------
    def list_knowledge_bases(self) -> Any:
        return self._json(self.http.get("/knowledge_base/list_knowledge_bases")).get("data", [])

    def create_knowledge_base(self, knowledge_base_name: str, vector_store_type: str = DEFAULT_VS_TYPE) -> Any:
        body = {
            "knowledge_base_name": knowledge_base_name,
            "vector_store_type": vector_store_type,
            "embed_model": self.embed_model,
        }
        return self._json(self.http.post("/knowledge_base/create_knowledge_base", json=body))

    def delete_knowledge_base(self, knowledge_base_name: str) -> Any:
        return self._json(self.http.post("/knowledge_base/delete_knowledge_base", json=knowledge_base_name))

    def list_kb_docs(self, knowledge_base_name: str) -> Any:
        r = self.http.get("/knowledge_base/list_files", params={"knowledge_base_name": knowledge_base_name})
        return self._json(r).get("data", [])

    def search_kb_docs(
        self, knowledge_base_name: str, query: str = "", file_name: str = "", metadata: dict | None = None
    ) -> Any:
        body = {
            "query": query,
            "knowledge_base_name": knowledge_base_name,
            "top_k": VECTOR_SEARCH_TOP_K,
            "score_threshold": SCORE_THRESHOLD,
            "file_name": file_name,
            "metadata": metadata or {},
        }
        return self._json(self.http.post("/knowledge_base/search_docs", json=body))

    def update_docs_by_id(self, knowledge_base_name: str, docs: dict[str, Any]) -> httpx.Response:
        body = {"knowledge_base_name": knowledge_base_name, "docs": docs}
        return self.http.post("/knowledge_base/update_docs_by_id", json=body)

    def upload_kb_docs(
        self,
        files: dict[str, bytes],
        knowledge_base_name: str,
        override: bool = False,
        to_vector_store: bool = True,
        docs: dict | str | None = None,
    ) -> Any:
        data = {
            "knowledge_base_name": knowledge_base_name,
            "override": override,
            "to_vector_store": to_vector_store,
            "chunk_size": CHUNK_SIZE,
            "chunk_overlap": OVERLAP_SIZE,
            "zh_title_enhance": ZH_TITLE_ENHANCE,
            "docs": json.dumps(docs or {}, ensure_ascii=False) if not isinstance(docs, str) else docs,
            "not_refresh_vs_cache": False,
        }
        parts = [("files", (name, content)) for name, content in files.items()]
        return self._json(self.http.post("/knowledge_base/upload_docs", data=data, files=parts))

    def delete_kb_docs(self, knowledge_base_name: str, file_names: list[str], delete_content: bool = False) -> Any:
        body = {
            "knowledge_base_name": knowledge_base_name,
            "file_names": file_names,
            "delete_content": delete_content,
            "not_refresh_vs_cache": False,
        }
        return self._json(self.http.post("/knowledge_base/delete_docs", json=body))

    def update_kb_info(self, knowledge_base_name: str, kb_info: str) -> Any:
        body = {"knowledge_base_name": knowledge_base_name, "kb_info": kb_info}
        return self._json(self.http.post("/knowledge_base/update_info", json=body))

    def update_kb_docs(
        self,
        knowledge_base_name: str,
        file_names: list[str],
        override_custom_docs: bool = False,
        docs: dict | None = None,
    ) -> Any:
        body = {
            "knowledge_base_name": knowledge_base_name,
            "file_names": file_names,
            "override_custom_docs": override_custom_docs,
            "chunk_size": CHUNK_SIZE,
            "chunk_overlap": OVERLAP_SIZE,
            "zh_title_enhance": ZH_TITLE_ENHANCE,
            "docs": json.dumps(docs or {}, ensure_ascii=False),
            "not_refresh_vs_cache": False,
        }
        return self._json(self.http.post("/knowledge_base/update_docs", json=body))

    def recreate_vector_store(self, knowledge_base_name: str, allow_empty_kb: bool = True) -> list[dict]:
        body = {
            "knowledge_base_name": knowledge_base_name,
            "allow_empty_kb": allow_empty_kb,
            "vs_type": DEFAULT_VS_TYPE,
            "embed_model": self.embed_model,
            "chunk_size": CHUNK_SIZE,
            "chunk_overlap": OVERLAP_SIZE,
            "zh_title_enhance": ZH_TITLE_ENHANCE,
            "not_refresh_vs_cache": False,
        }
        return list(self._stream("/knowledge_base/recreate_vector_store", body))

    # -- LLM models -----------------------------------------------------------------------------------------------
    def list_running_models(self, controller_address: str | None = None) -> Any:
        r = self.http.post("/llm_model/list_running_models", json={"controller_address": controller_address})
        return self._json(r).get("data", [])

    def get_default_llm_model(self, configured: list[str], local_first: bool = True) -> tuple[str, bool]:
        """ApiRequest's choice: the first configured model that runs (local first), else the first running one."""
        running = self.list_running_models()
        if not running:
            return "", False
        for name in configured:
            if name in running and not (local_first and running[name].get("online_api")):
                return name, not running[name].get("online_api")
        first = next(iter(running))
        return first, not running[first].get("online_api")

    def list_config_models(self, types: list[str] | None = None) -> Any:
        r = self.http.post("/llm_model/list_config_models", json={"types": types or ["local", "online"]})
        return self._json(r).get("data", {})

    def get_model_config(self, model_name: str | None = None) -> Any:
        return self._json(self.http.post("/llm_model/get_model_config", json={"model_name": model_name})).get(
            "data", {}
        )

    def stop_llm_model(self, model_name: str, controller_address: str | None = None) -> Any:
        body = {"model_name": model_name, "controller_address": controller_address}
        return self._json(self.http.post("/llm_model/stop", json=body))

    def change_llm_model(self, model_name: str, new_model_name: str, controller_address: str | None = None) -> Any:
        body = {"model_name": model_name, "new_model_name": new_model_name, "controller_address": controller_address}
        return self._json(self.http.post("/llm_model/change", json=body))

    # -- other ----------------------------------------------------------------------------------------------------
    def embed_texts(self, texts: list[str], to_query: bool = False) -> Any:
        body = {"texts": texts, "embed_model": self.embed_model, "to_query": to_query}
        return self._json(self.http.post("/other/embed_texts", json=body)).get("data")
