"""Settings of the REST API server (the ``api:`` section of configs/settings.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from kbqa.cors import check_origins

KeyScope = Literal["read", "write", "admin"]


class APIKey(BaseModel):
    """One entry of ``api.api_keys`` written as a mapping; a plain string entry is the same with scope admin."""

    model_config = ConfigDict(extra="forbid")

    key: SecretStr = Field(description="The secret sent as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.")
    scope: KeyScope = Field(
        "admin",
        description="read: search, chat, list and download; write: also upload, re-index and delete files, cancel "
        "jobs; admin: also create, delete, describe, rebuild, export and import knowledge bases, model changes.",
    )
    knowledge_bases: list[str] | None = Field(
        None,
        max_length=10_000,
        description="Knowledge bases this key may see and use (exact names). Empty: all of them.",
    )
    name: str = Field("", max_length=100, description="A label for the key in logs (never the key itself).")


class APISettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field(
        "127.0.0.1",
        description="Interface to bind. Chatchat bound 0.0.0.0; keep loopback unless a "
        "proxy or other hosts must reach the server, and then set api_keys.",
    )
    port: int = Field(7861, ge=1, le=65535, description="Port (Chatchat's API_SERVER port).")
    api_keys: list[SecretStr | APIKey] = Field(
        default_factory=list,
        description="Keys accepted as 'Authorization: Bearer <key>' or 'X-API-Key: <key>' on every route, the docs "
        "included. Each entry is a plain string (a key with every right, as in Chatchat) or a mapping {key, scope: "
        "read|write|admin, knowledge_bases: [names], name}. Empty: no authentication.",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins allowed by CORS (credentials allowed), each scheme://host[:port]; '*' and "
        "'null' are refused. Empty: CORS off.",
    )
    max_upload_mb: float = Field(
        1024.0,
        gt=0,
        description="Largest request body in MiB (all files of one upload together); each file is "
        "also limited by kb.max_file_mb.",
    )
    ingest_workers: int = Field(
        2, ge=1, description="Background ingestion jobs that run at once; more wait in the queue."
    )
    separate_query_embedder: bool = Field(
        True,
        description="Load a second instance of the embedding model for queries, so searches do not wait while a "
        "background ingestion holds the first one (costs the model's memory once more).",
    )
    max_queued_jobs: int = Field(64, ge=1, description="Jobs waiting beyond this are refused with HTTP 503.")
    job_history: int = Field(200, ge=1, description="Finished jobs kept for /jobs before the oldest are forgotten.")
    base_url: str | None = Field(
        None,
        description="Public URL of the server for download links in chat sources (e.g. behind a proxy). "
        "Empty: the URL the request came in on.",
    )
    prompts_file: Path = Field(
        Path("configs/prompts.yaml"), description="Jinja2 prompt templates (relative to the project root)."
    )
    temp_dir: Path | None = Field(
        None,
        description="Where /knowledge_base/upload_temp_docs keeps files for file chat. Empty: <kb_root>/.kbqa-temp.",
    )
    backup_dir: Path | None = Field(
        None,
        description="Where /knowledge_base/export writes archives (downloaded with /knowledge_base/download_backup) "
        "and /knowledge_base/import keeps an upload while it is imported. Empty: <kb_root>/.backups.",
    )
    temp_kb_cache: int = Field(
        10,
        ge=1,
        description="Temporary file-chat knowledge bases kept (least recently "
        "used are dropped with their files; Chatchat's CACHED_MEMO_VS_NUM).",
    )
    empty_answer: str | None = Field(
        "根据已知信息无法回答该问题。(No relevant content was found in the knowledge base.)",
        description="Answer given without asking the LLM when retrieval finds nothing. Empty: ask the LLM with "
        "the 'empty' prompt template instead (Chatchat's behaviour).",
    )
    refusal_en: str = Field(
        "I cannot answer this from the knowledge base.",
        min_length=1,
        max_length=500,
        description="The sentence the grounded knowledge-base prompt tells the model to answer with, for an English "
        "question, when the numbered sources do not contain the answer (the `refusal` prompt variable).",
    )
    refusal_zh: str = Field(
        "根据已知信息无法回答该问题。",
        min_length=1,
        max_length=500,
        description="The same sentence for a Chinese question (a quarter or more of its letters CJK ideographs).",
    )
    kb_chat_temperature: float = Field(
        0.1,
        ge=0.0,
        le=2.0,
        description="Sampling temperature of knowledge-base chat, file chat and /kb/v1 when the request sends none: "
        "low, so the answer keeps to the sources. A request's own value wins (/chat/chat keeps "
        "llm.client.temperature).",
    )
    kb_chat_max_tokens: int = Field(
        256,
        ge=1,
        le=1_000_000,
        description="Longest answer of knowledge-base chat, file chat and /kb/v1, in tokens, when the request sends "
        "none (or Chatchat's 0 / -1): a short grounded answer with citations, not an essay. A request's own value "
        "wins.",
    )
    answerability_gate: bool = Field(
        True,
        description="Before a knowledge-base answer, ask the LLM (one token, with logprobs) whether the retrieved "
        "sources contain the answer; below answerability_threshold the reply is the refusal (refusal_en / "
        "refusal_zh) with the sources looked at, and nothing is generated. Costs one more prompt pass per question.",
    )
    answerability_threshold: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="The gate refuses when P(yes) that the sources hold the answer is below this, for a model "
        "without its own entry in answerability_thresholds.",
    )
    answerability_thresholds: dict[
        Annotated[str, Field(max_length=256)], Annotated[float, Field(ge=0.0, le=1.0)] | None
    ] = Field(
        default_factory=dict,
        max_length=256,
        description="Per served model name: the gate's threshold calibrated for that model (`python "
        "benchmarks/answer_eval.py --calibrate-gate`; the shipped values and their figures are in "
        "benchmarks/RESULTS.md, 'Answerability gate'); null turns the gate off for a model whose yes/no "
        "judgement does not separate anything (the bundled SmolLM2-135M).",
    )
    rewrite_with_history: bool = Field(
        True, description="Rewrite a follow-up question with the chat history before retrieval (one LLM call)."
    )
    sse_ping_s: float = Field(15.0, gt=0, description="Seconds between SSE keep-alive comments.")
    controller_timeout_s: float = Field(5.0, gt=0, description="Timeout asking the LLM controller for its models.")

    def keys(self) -> list[APIKey]:
        """Every configured key as an :class:`APIKey`, plain strings as admin keys of every knowledge base."""
        return [k if isinstance(k, APIKey) else APIKey(key=k) for k in self.api_keys]

    def widest_key(self) -> str | None:
        """The key with the most rights (admin over every knowledge base first): what a process started together
        with this server (the web UI, the readiness probe, `kbqa eval`) sends. None without keys."""
        rank = {"read": 0, "write": 1, "admin": 2}
        ranked = sorted(self.keys(), key=lambda k: (rank[k.scope], k.knowledge_bases is None), reverse=True)
        return ranked[0].key.get_secret_value() if ranked else None

    @field_validator("cors_origins")
    @classmethod
    def _exact_origins(cls, origins: list[str]) -> list[str]:
        # Credentials are allowed, and a wildcard with credentials lets any web page act as the user.
        return check_origins(origins)
