"""What the API server answers, as typed values for the pages. Unknown fields are ignored, so a newer server
with more fields still works."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

JOB_FINISHED = frozenset({"succeeded", "failed", "cancelled", "interrupted"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class KnowledgeBase(_Model):
    name: str
    info: str = ""
    vs_type: str = ""
    embed_model: str = ""
    file_count: int = 0
    chunk_count: int = 0
    created_at: datetime | None = None


class KBFile(_Model):
    path: str
    size: int = 0
    chunk_count: int = 0
    status: str = ""
    error: str = ""
    in_folder: bool = True
    in_db: bool = True
    custom_docs: bool = False
    loader: str = ""
    updated_at: datetime | None = None
    failed_at: datetime | None = None


class Chunk(_Model):
    """A chunk from /knowledge_base/search_docs: a search hit (with relevance) or a listed chunk of a file."""

    id: str = ""
    text: str = Field("", alias="page_content")
    metadata: dict[str, Any] = Field(default_factory=dict)
    relevance: float | None = None
    score: float | None = None

    @property
    def file(self) -> str:
        return str(self.metadata.get("source", ""))

    @property
    def page(self) -> Any:
        return self.metadata.get("page")

    @property
    def heading(self) -> Any:
        return self.metadata.get("heading") or self.metadata.get("title")

    @property
    def ordinal(self) -> int | None:
        value = self.metadata.get("ordinal")
        return int(value) if isinstance(value, int | float | str) and str(value).isdigit() else None


class Source(_Model):
    """One cited chunk of an answer (the ``sources`` of a chat's last event)."""

    index: int = 0
    knowledge_base_name: str | None = None
    file: str = ""
    page: Any = None
    heading: str | None = None
    chunk_id: str | None = None
    text: str = ""
    relevance: float | None = None
    score: float | None = None
    url: str | None = None


@dataclass
class ChatEvent:
    """One event of a chat stream: a piece of the answer, and/or (last) the cited sources."""

    text: str = ""
    message_id: str | None = None
    sources: list[Source] | None = None
    docs: list[str] | None = None


class FileProgress(_Model):
    status: str = ""
    chunks: int = 0
    error: str | None = None


class Job(_Model):
    id: str
    kind: str = ""
    knowledge_base_name: str = ""
    status: str = ""
    created_at: float | None = None  # seconds since the epoch
    total: int = 0
    finished: int = 0
    failed: int = 0
    error: str | None = None
    files: dict[str, FileProgress] = Field(default_factory=dict)
    errors: dict[str, str] = Field(default_factory=dict)
    result: dict[str, Any] | None = None

    @property
    def done(self) -> bool:
        return self.status in JOB_FINISHED

    @property
    def failed_files(self) -> dict[str, str]:
        """Every file that failed, with its reason (per-file errors and those only in the final report)."""
        failed = dict(self.errors)
        if self.result:
            failed.update(self.result.get("failed_files") or {})
        return failed


@dataclass
class JobAccepted:
    job_id: str
    failed_files: dict[str, str] = field(default_factory=dict)  # refused before the job started (e.g. too large)


@dataclass
class TempUpload:
    id: str
    failed_files: list[Any] = field(default_factory=list)


class KeyRights(_Model):
    """What the UI's key may do (/auth/whoami): the UI leaves out the controls the server would refuse."""

    scope: str = "admin"  # a server without /auth/whoami (older kbqa, Chatchat) has no scopes
    knowledge_bases: list[str] | None = None

    @property
    def can_write(self) -> bool:
        return self.scope in ("write", "admin")

    @property
    def can_admin(self) -> bool:
        return self.scope == "admin"


class ServerConfig(_Model):
    """The parts of /server/configs the UI uses (Chatchat's key names)."""

    default_kb: str | None = Field(None, alias="DEFAULT_KNOWLEDGE_BASE")
    default_vs_type: str = Field("faiss", alias="DEFAULT_VS_TYPE")
    vs_types: list[str] = Field(default_factory=list, alias="VS_TYPES")
    embed_model: str = Field("", alias="EMBEDDING_MODEL")
    embed_models: list[str] = Field(default_factory=list, alias="EMBEDDING_MODELS")
    top_k: int = Field(3, alias="VECTOR_SEARCH_TOP_K")
    score_threshold: float = Field(1.0, alias="SCORE_THRESHOLD")
    temperature: float = Field(0.7, alias="TEMPERATURE")
    kb_temperature: float = Field(0.1, alias="KB_CHAT_TEMPERATURE")
    llm_models: list[str] = Field(default_factory=list, alias="LLM_MODELS")
    chunk_size: int = Field(250, alias="CHUNK_SIZE")
    chunk_overlap: int = Field(50, alias="OVERLAP_SIZE")
    zh_title_enhance: bool = Field(False, alias="ZH_TITLE_ENHANCE")
