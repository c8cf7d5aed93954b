"""Request and response bodies. Field names, defaults and shapes follow Langchain-Chatchat 0.2.10; ``None`` defaults
mean "the server's setting" (Chatchat read the same values from its config files). Unknown fields are ignored, as
Chatchat's clients send some (``placeholder``, ``not_refresh_vs_cache``) that mean nothing here."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from kbqa.chat.history import History

# Bounds of every request field: a value past them is refused with 422 before any work starts. They sit well above
# any real use and well below what would cost the server (an int64 overflow, a megabyte name, a million-item list).
NAME_MAX = 1024  # KB and file names: the KB core's own grammar (64 / 512 characters) gives the precise 400 after
PATH_MAX = 4096
MODEL_NAME_MAX = 255
TEXT_MAX = 100_000  # a query, a chunk, a message
DOC_TEXT_MAX = 1_000_000  # one custom document
INFO_MAX = 4096
LIST_MAX = 10_000  # file names, chunk ids, golden rows
HISTORY_MAX = 200  # history turns
MAX_TOKENS_MAX = 131_072
CHUNK_SIZE_MAX = 100_000
METADATA_MAX = 64  # keys of a metadata filter or a document's metadata

# Stored times are UTC; a naive one (a row written before timestamps carried their zone) is sent with its offset, so
# every time in a response is an RFC 3339 date-time.
KBName = Annotated[str, Field(max_length=NAME_MAX, examples=["samples"])]
FilePath = Annotated[str, Field(max_length=PATH_MAX)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class BaseResponse(BaseModel):
    """Chatchat's envelope; every error of the API server (4xx, 5xx) has this shape too, with ``data`` holding
    details (the validation errors of a 422)."""

    code: int = Field(200, description="Chatchat's in-band code (the HTTP status is now set too)")
    msg: str = Field("success")
    data: Any = None


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str = Field(..., description="invalid_request_error (4xx) or server_error (5xx)")
    param: str | None = None
    code: int


class OpenAIErrorResponse(BaseModel):
    """The error envelope of the KB-as-model routes under /kb/v1, as OpenAI clients expect it."""

    error: OpenAIErrorDetail


# Every route documents its errors: the same envelope for any 4xx and 5xx (routes with a notable one list it too).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": BaseResponse, "description": "The request cannot be served as sent; msg says why"},
    "5XX": {"model": BaseResponse, "description": "Server fault (details in the server's log), or 501 not implemented"},
}
OPENAI_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": OpenAIErrorResponse, "description": "OpenAI's error envelope"},
    "5XX": {"model": OpenAIErrorResponse, "description": "OpenAI's error envelope"},
}


def sse_responses(description: str) -> dict[int | str, dict[str, Any]]:
    """A 200 that streams server-sent events; the schema describes one event (OpenAPI 3.1's reading of
    text/event-stream)."""
    event = {
        "type": "object",
        "required": ["data"],
        "properties": {
            "data": {"type": "string", "description": "one JSON object (the /kb/v1 stream ends with [DONE])"},
            "event": {"type": "string"},
            "id": {"type": "string"},
            "retry": {"type": "integer"},
        },
    }
    return {200: {"description": description, "content": {"text/event-stream": {"schema": event}}}}


NOT_IMPLEMENTED: dict[int | str, dict[str, Any]] = {501: {"model": BaseResponse, "description": "Not implemented"}}
ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"model": BaseResponse, "description": "background=true: the job was queued; data holds job_id, status_url"}
}


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
    model_name: str | None = Field(
        None, max_length=MODEL_NAME_MAX, description="LLM name at the endpoint (default llm.client.model)"
    )
    # Chatchat's schema said 0.7; empty now means the server's setting, so KB chat can default lower.
    temperature: float | None = Field(
        None,
        ge=0.0,
        le=2.0,
        description="Empty: the server's setting (api.kb_chat_temperature for knowledge-base and file chat, "
        "llm.client.temperature for /chat/chat)",
    )
    max_tokens: int | None = Field(
        None,
        ge=-1,
        le=MAX_TOKENS_MAX,
        description="0, -1 or empty: the server's setting (api.kb_chat_max_tokens for knowledge-base and file chat, "
        "llm.client.max_tokens for /chat/chat)",
    )
    prompt_name: str = Field("default", max_length=MODEL_NAME_MAX, description="Template name in configs/prompts.yaml")


class ChatRequest(_LLMFields):
    query: str = Field(..., max_length=TEXT_MAX, examples=["恼羞成怒"])
    # Chatchat 0.2.10's ApiRequest.chat_chat sends null when it has no conversation.
    conversation_id: Annotated[str, BeforeValidator(lambda v: "" if v is None else v)] = Field(
        "", max_length=32, description="Conversation to record the message in"
    )
    history_len: int = Field(
        -1, ge=-1, le=HISTORY_MAX, description="With conversation_id and no history: turns read from the database"
    )
    history: Annotated[int, Field(ge=-1, le=HISTORY_MAX)] | Annotated[list[History], Field(max_length=HISTORY_MAX)] = (
        Field(default_factory=list)
    )


class FeedbackRequest(_Body):
    message_id: str = Field("", max_length=32)
    score: int = Field(0, ge=0, le=100, description="0-100, higher is better")
    reason: str = Field("", max_length=255)


class KBChatRequest(_LLMFields):
    query: str = Field(..., max_length=TEXT_MAX, examples=["你好"])
    knowledge_base_name: KBName
    top_k: int | None = _TOP_K
    score_threshold: float | None = _THRESHOLD
    history: list[History] = Field(default_factory=list, max_length=HISTORY_MAX)
    conversation_id: str = Field(
        "",
        max_length=32,
        description="Not in Chatchat: when set, the question and answer are recorded under this conversation and the "
        "last event carries `message_id`, so the answer can be rated with /chat/feedback",
    )


class FileChatRequest(_LLMFields):
    query: str = Field(..., max_length=TEXT_MAX)
    knowledge_id: str = Field(..., max_length=64, description="id returned by /knowledge_base/upload_temp_docs")
    top_k: int | None = _TOP_K
    score_threshold: float | None = _THRESHOLD
    history: list[History] = Field(default_factory=list, max_length=HISTORY_MAX)
    conversation_id: str = Field(
        "",
        max_length=32,
        description="Not in Chatchat: when set, the question and answer are recorded under this conversation and the "
        "last event carries `message_id`, so the answer can be rated with /chat/feedback",
    )


# --- knowledge bases -----------------------------------------------------------------------------------------------
class CreateKBRequest(_Body):
    knowledge_base_name: KBName
    vector_store_type: str | None = Field(
        None, max_length=MODEL_NAME_MAX, description="default kb.default_vs_type (faiss); see /server/configs VS_TYPES"
    )
    embed_model: str | None = Field(
        None,
        max_length=MODEL_NAME_MAX,
        description="a name from embedding.models (default embedding.model); see /server/configs EMBEDDING_MODELS. "
        "Folder paths are refused.",
    )
    kb_info: str | None = Field(None, max_length=INFO_MAX)


class DeleteKBRequest(_Body):
    knowledge_base_name: KBName


class SearchDocsRequest(_Body):
    query: str = Field("", max_length=TEXT_MAX)
    knowledge_base_name: KBName
    top_k: int | None = _TOP_K
    score_threshold: float | None = _THRESHOLD
    file_name: str = Field("", max_length=PATH_MAX, description="Only chunks of this file (exact match, no wildcards)")
    metadata: dict[str, Any] = Field(
        default_factory=dict, max_length=METADATA_MAX, description="Only chunks whose metadata has these values"
    )


class DeleteDocsRequest(_Body):
    knowledge_base_name: KBName
    file_names: list[FilePath] = Field(..., max_length=LIST_MAX)
    delete_content: bool = False
    not_refresh_vs_cache: bool = False


class UpdateInfoRequest(_Body):
    knowledge_base_name: KBName
    kb_info: str = Field(..., max_length=INFO_MAX)


def check_split(chunk_size: int | None, chunk_overlap: int | None) -> None:
    """When both are given the overlap must be smaller (the splitter cannot work otherwise); with one given, the
    server's default for the other is checked where the split settings are built (AppContext.split)."""
    if chunk_size is not None and chunk_overlap is not None and chunk_overlap >= chunk_size:
        raise ValueError(f"chunk_overlap ({chunk_overlap}) must be smaller than chunk_size ({chunk_size})")


class _SplitFields(_Body):
    chunk_size: int | None = Field(None, gt=0, le=CHUNK_SIZE_MAX, description="default kb.chunk_size (250)")
    chunk_overlap: int | None = Field(
        None, ge=0, lt=CHUNK_SIZE_MAX, description="default kb.chunk_overlap (50); smaller than chunk_size"
    )
    zh_title_enhance: bool | None = Field(None, description="default kb.zh_title_enhance")

    @model_validator(mode="after")
    def _overlap_below_size(self) -> _SplitFields:
        check_split(self.chunk_size, self.chunk_overlap)
        return self


class UpdateDocsRequest(_SplitFields):
    knowledge_base_name: KBName
    file_names: list[FilePath] = Field(..., max_length=LIST_MAX)
    override_custom_docs: bool = False
    docs: (
        Annotated[str, Field(max_length=100 * DOC_TEXT_MAX)] | Annotated[dict[str, Any], Field(max_length=LIST_MAX)]
    ) = Field(
        "",
        description="Custom docs: a JSON string {file: [{page_content, metadata}]} (the request's size is bounded "
        "by api.max_upload_mb)",
    )
    not_refresh_vs_cache: bool = False
    background: bool = Field(False, description="Return a job id at once instead of waiting")


class DocIn(_Body):
    page_content: str = Field("", max_length=DOC_TEXT_MAX)
    metadata: dict[str, Any] = Field(default_factory=dict, max_length=METADATA_MAX)


class UpdateDocsByIdRequest(_Body):
    knowledge_base_name: KBName
    docs: dict[Annotated[str, Field(max_length=64)], DocIn | None] = Field(
        ..., max_length=LIST_MAX, description="{chunk id: new document}; empty content deletes it"
    )


class RecreateRequest(_SplitFields):
    knowledge_base_name: KBName
    allow_empty_kb: bool = True
    vs_type: str | None = Field(None, max_length=MODEL_NAME_MAX, description="default: the KB's own")
    embed_model: str | None = Field(
        None, max_length=MODEL_NAME_MAX, description="a name from embedding.models (default: the KB's own)"
    )
    not_refresh_vs_cache: bool = False
    background: bool = Field(False, description="Return a job id at once (HTTP 202) instead of streaming progress")


class EvaluateRequest(_Body):
    knowledge_base_name: KBName
    golden: list[Annotated[dict[str, Any], Field(max_length=METADATA_MAX)]] = Field(
        ...,
        min_length=1,
        max_length=LIST_MAX,
        description='Golden rows as `kbqa eval` reads them: {"query": ..., "relevant_files": [...]} or '
        '{"query": ..., "relevant_chunk_ids": [...]}',
    )
    modes: list[Literal["dense", "keyword", "hybrid"]] | None = Field(
        None, max_length=3, description="Retrieval modes to compare (default: all)"
    )


class KBDetail(BaseModel):
    name: str
    info: str
    vs_type: str = Field(..., description="Vector store backend (faiss)")
    embed_model: str
    embed_dim: int
    file_count: int
    chunk_count: int
    created_at: AwareDatetime = Field(..., description="UTC, ISO 8601 with offset")


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
    created_at: AwareDatetime = Field(..., description="UTC, ISO 8601 with offset")
    updated_at: AwareDatetime = Field(..., description="UTC, ISO 8601 with offset")
    failed_at: AwareDatetime | None = Field(None, description="When the recorded error happened (status error), UTC")


class FileDetailsResponse(BaseResponse):
    data: list[FileDetail] = Field(default_factory=list)  # type: ignore[assignment]


# --- llm / server / other ------------------------------------------------------------------------------------------
class ListRunningModelsRequest(_Body):
    controller_address: str | None = Field(
        None, max_length=PATH_MAX, description="Ignored: only the configured controller is asked"
    )
    placeholder: str | None = Field(None, max_length=PATH_MAX)


class ListConfigModelsRequest(_Body):
    types: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=lambda: ["local", "online"], max_length=8)


class ModelConfigRequest(_Body):
    model_name: str = Field(..., max_length=MODEL_NAME_MAX)


class PromptTemplateRequest(_Body):
    type: Literal["llm_chat", "knowledge_base_chat", "knowledge_base_system", "search_engine_chat", "agent_chat"] = (
        "llm_chat"
    )
    name: str = Field("default", max_length=MODEL_NAME_MAX)


class EmbedTextsRequest(_Body):
    texts: list[Annotated[str, Field(max_length=TEXT_MAX)]] = Field(..., max_length=2048)
    embed_model: str | None = Field(None, max_length=MODEL_NAME_MAX, description="a name from embedding.models")
    to_query: bool = False


# --- KB-as-model OpenAI endpoint -----------------------------------------------------------------------------------
class OpenAIMessage(_Body):
    role: str = Field(..., max_length=32)
    content: str | None = Field("", max_length=TEXT_MAX)


class KBCompletionRequest(_Body):
    model: str = Field(..., max_length=NAME_MAX, description="The knowledge base to answer from")
    messages: list[OpenAIMessage] = Field(..., min_length=1, max_length=HISTORY_MAX)
    stream: bool = False
    temperature: float | None = Field(None, ge=0.0, le=2.0, description="Empty: api.kb_chat_temperature")
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS_MAX, description="Empty: api.kb_chat_max_tokens")
    top_k: int | None = _TOP_K
    score_threshold: float | None = _THRESHOLD
    prompt_name: str = Field("default", max_length=MODEL_NAME_MAX)


class ExportRequest(_Body):
    knowledge_base_name: KBName
    compress: bool = Field(False, description="gzip the archive (.kbqa.tar.gz): smaller, slower")
    background: bool = Field(False, description="Return a job id at once (HTTP 202) instead of waiting")
