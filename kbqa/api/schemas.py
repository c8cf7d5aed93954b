"""Request and response bodies. Field names, defaults and shapes follow Langchain-Chatchat 0.2.10; ``None`` defaults
mean "the server's setting" (Chatchat read the same values from its config files). Unknown fields are ignored, as
Chatchat's clients send some (``placeholder``, ``not_refresh_vs_cache``) that mean nothing here."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kbqa.chat.history import History


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class BaseResponse(BaseModel):
    code: int = Field(200, description="Chatchat's in-band code (the HTTP status is now set too)")
    msg: str = Field("success")
    data: Any = None


class ListResponse(BaseResponse):
    data: list[str] = Field(default_factory=list)  # type: ignore[assignment]


# --- chat ----------------------------------------------------------------------------------------------------------
_TOP_K = Field(None, ge=1, le=100, description="Chunks to retrieve (default kb.top_k = 3)")
_THRESHOLD = Field(
    None,
    ge=0.0,
    le=2.0,
    description="Chatchat distance threshold: keep hits with 2 - 2*cosine <= this (default kb.score_threshold = 1.0). "
    "Lower is stricter. The `relevance` of each source (0..1, higher is better) is the friendlier number.",
)


class _LLMFields(_Body):
    stream: bool = Field(False, description="Stream tokens as SSE events")
    model_name: str | None = Field(None, description="LLM name at the endpoint (default llm.client.model)")
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    max_tokens: int | None = Field(None, description="<= 0 or empty: the endpoint's default")
    prompt_name: str = Field("default", description="Template name in configs/prompts.yaml")


class ChatRequest(_LLMFields):
    query: str = Field(..., examples=["恼羞成怒"])
    conversation_id: str = Field("", description="Conversation to record the message in")
    history_len: int = Field(-1, description="With conversation_id and no history: turns read from the database")
    history: int | list[History] = Field(default_factory=list)


class FeedbackRequest(_Body):
    message_id: str = Field("", max_length=32)
    score: int = Field(0, ge=0, le=100, description="0-100, higher is better")
    reason: str = Field("", max_length=255)


class KBChatRequest(_LLMFields):
    query: str = Field(..., examples=["你好"])
    knowledge_base_name: str = Field(..., examples=["samples"])
    top_k: int | None = _TOP_K
    score_threshold: float | None = _THRESHOLD
    history: list[History] = Field(default_factory=list)
    conversation_id: str = Field(
        "",
        description="Not in Chatchat: when set, the question and answer are recorded under this conversation and the "
        "last event carries `message_id`, so the answer can be rated with /chat/feedback",
    )


class FileChatRequest(_LLMFields):
    query: str
    knowledge_id: str = Field(..., description="id returned by /knowledge_base/upload_temp_docs")
    top_k: int | None = _TOP_K
    score_threshold: float | None = _THRESHOLD
    history: list[History] = Field(default_factory=list)
    conversation_id: str = Field(
        "",
        description="Not in Chatchat: when set, the question and answer are recorded under this conversation and the "
        "last event carries `message_id`, so the answer can be rated with /chat/feedback",
    )


# --- knowledge bases -----------------------------------------------------------------------------------------------
class CreateKBRequest(_Body):
    knowledge_base_name: str = Field(..., examples=["samples"])
    vector_store_type: str | None = Field(None, description="default kb.default_vs_type (faiss)")
    embed_model: str | None = Field(None, description="a name from embedding.models (default embedding.model)")
    kb_info: str | None = None


class DeleteKBRequest(_Body):
    knowledge_base_name: str


class SearchDocsRequest(_Body):
    query: str = ""
    knowledge_base_name: str = Field(..., examples=["samples"])
    top_k: int | None = _TOP_K
    score_threshold: float | None = _THRESHOLD
    file_name: str = Field("", description="Only chunks of this file (exact match, no wildcards)")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Only chunks whose metadata has these values")


class DeleteDocsRequest(_Body):
    knowledge_base_name: str
    file_names: list[str]
    delete_content: bool = False
    not_refresh_vs_cache: bool = False


class UpdateInfoRequest(_Body):
    knowledge_base_name: str
    kb_info: str = Field(..., max_length=4096)


class _SplitFields(_Body):
    chunk_size: int | None = Field(None, gt=0, description="default kb.chunk_size (250)")
    chunk_overlap: int | None = Field(None, ge=0, description="default kb.chunk_overlap (50)")
    zh_title_enhance: bool | None = Field(None, description="default kb.zh_title_enhance")


class UpdateDocsRequest(_SplitFields):
    knowledge_base_name: str
    file_names: list[str]
    override_custom_docs: bool = False
    docs: str | dict[str, Any] = Field("", description="Custom docs: a JSON string {file: [{page_content, metadata}]}")
    not_refresh_vs_cache: bool = False
    background: bool = Field(False, description="Return a job id at once instead of waiting")


class DocIn(_Body):
    page_content: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)


class UpdateDocsByIdRequest(_Body):
    knowledge_base_name: str
    docs: dict[str, DocIn | None] = Field(..., description="{chunk id: new document}; empty content deletes it")


class RecreateRequest(_SplitFields):
    knowledge_base_name: str = Field(..., examples=["samples"])
    allow_empty_kb: bool = True
    vs_type: str | None = None
    embed_model: str | None = None
    not_refresh_vs_cache: bool = False
    background: bool = Field(False, description="Return a job id at once (HTTP 202) instead of streaming progress")


class EvaluateRequest(_Body):
    knowledge_base_name: str
    golden: list[dict[str, Any]] = Field(
        ...,
        min_length=1,
        description='Golden rows as `kbqa eval` reads them: {"query": ..., "relevant_files": [...]} or '
        '{"query": ..., "relevant_chunk_ids": [...]}',
    )
    modes: list[str] | None = Field(None, description="Retrieval modes to compare (default: all)")


class KBDetail(BaseModel):
    name: str
    info: str
    vs_type: str = Field(..., description="Vector store backend (faiss)")
    embed_model: str
    embed_dim: int
    file_count: int
    chunk_count: int
    created_at: datetime


class KBDetailsResponse(BaseResponse):
    data: list[KBDetail] = Field(default_factory=list)  # type: ignore[assignment]


class FileDetail(BaseModel):
    path: str = Field(..., description="Relative path inside the KB's content folder (posix, may hold sub-folders)")
    ext: str
    size: int = Field(..., description="Bytes")
    mtime: float = Field(..., description="Modification time of the file when it was ingested (Unix seconds)")
    loader: str
    splitter: str
    chunk_size: int
    chunk_overlap: int
    zh_title_enhance: bool
    custom_docs: bool = Field(..., description="Chunks were given by the client (docs=) instead of parsed")
    chunk_count: int
    status: str = Field(
        ...,
        description="ready; error (see error and failed_at) when the file could not be ingested, kept until the file "
        "changes; pending when it is known but not indexed yet (moved from Chatchat)",
    )
    error: str
    in_folder: bool = Field(..., description="The file is still in the content folder")
    in_db: bool = Field(
        True,
        description="The file is known to the database. False: it lies in the content folder but was never indexed "
        "(copied there by hand, or its ingestion was cut off by a restart); status is then 'not_indexed' and "
        "/knowledge_base/update_docs indexes it",
    )
    created_at: datetime
    updated_at: datetime
    failed_at: datetime | None = Field(None, description="When the recorded error happened (status error)")


class FileDetailsResponse(BaseResponse):
    data: list[FileDetail] = Field(default_factory=list)  # type: ignore[assignment]


# --- llm / server / other ------------------------------------------------------------------------------------------
class ListRunningModelsRequest(_Body):
    controller_address: str | None = Field(None, description="Ignored: only the configured controller is asked")
    placeholder: str | None = None


class ListConfigModelsRequest(_Body):
    types: list[str] = Field(default_factory=lambda: ["local", "online"])


class ModelConfigRequest(_Body):
    model_name: str


class PromptTemplateRequest(_Body):
    type: Literal["llm_chat", "knowledge_base_chat", "search_engine_chat", "agent_chat"] = "llm_chat"
    name: str = "default"


class EmbedTextsRequest(_Body):
    texts: list[str] = Field(..., max_length=2048)
    embed_model: str | None = None
    to_query: bool = False


# --- KB-as-model OpenAI endpoint -----------------------------------------------------------------------------------
class OpenAIMessage(_Body):
    role: str
    content: str | None = ""


class KBCompletionRequest(_Body):
    model: str = Field(..., description="The knowledge base to answer from")
    messages: list[OpenAIMessage] = Field(..., min_length=1)
    stream: bool = False
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    max_tokens: int | None = None
    top_k: int | None = _TOP_K
    score_threshold: float | None = _THRESHOLD
    prompt_name: str = "default"
