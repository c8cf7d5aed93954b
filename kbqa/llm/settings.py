"""Settings for the LLM side: controller, model worker, OpenAI-compatible server, and the client kbqa uses.

These are plain pydantic sections; :class:`kbqa.settings.Settings` holds them under ``llm`` so they come from
``configs/settings.yaml`` and ``KBQA_LLM__*`` environment variables like every other setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from kbqa.cors import check_origins


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ControllerSettings(_Section):
    host: str = Field("127.0.0.1", description="Interface the controller binds to.")
    port: int = Field(21001, ge=1, le=65535, description="Controller port.")
    heartbeat_expiration_s: float = Field(
        30.0,
        gt=0,
        description="A worker whose last heartbeat is older than this is removed (3x the worker's interval).",
    )
    sweep_interval_s: float = Field(5.0, gt=0, description="How often expired workers are looked for.")
    status_timeout_s: float = Field(
        5.0, gt=0, description="Timeout when the controller asks a registering worker for its status."
    )


class WorkerSettings(_Section):
    host: str = Field("127.0.0.1", description="Interface the worker binds to.")
    port: int = Field(21002, ge=1, le=65535, description="Worker port.")
    worker_address: str | None = Field(
        None,
        description="URL other processes reach this worker at (its identity at the controller). "
        "Empty: http://<host>:<port>.",
    )
    controller_address: str = Field("http://127.0.0.1:21001", description="Controller to register with.")
    register_with_controller: bool = Field(True, description="Register with the controller and send heartbeats.")
    heartbeat_interval_s: float = Field(10.0, gt=0, description="Seconds between heartbeats.")
    backend: Literal["auto", "llama_cpp", "transformers", "sentence_transformers"] = Field(
        "auto",
        description="auto: a sentence-transformers folder (modules.json) gets the embedding backend; a .gguf file "
        "of 200 MB or more on the CPU gets llama.cpp (quantized kernels: less memory, several times faster "
        "decoding); a smaller .gguf (the bundled SmolLM2, whose fp32 copy prefills long prompts faster), a Hugging "
        "Face folder, or any model on a GPU, gets transformers. When llama.cpp is not installed the "
        "worker says so and falls back to transformers.",
    )
    model_path: str | None = Field(
        None,
        description="A model name from the catalog (`kbqa models list`, installed with `kbqa models install NAME`), "
        "or a local Hugging Face folder or .gguf file. Empty: the bundled SmolLM2-135M-Instruct GGUF.",
    )
    model_names: list[str] = Field(
        default_factory=list,
        description="Names the model is served under. Empty: the catalog name, or the folder or file name without "
        "extension.",
    )
    models_dir: Path | None = Field(
        None,
        description="Where `kbqa models install` puts catalog models and where the worker looks for them. "
        "Empty: $XDG_DATA_HOME/kbqa/models (~/.local/share/kbqa/models).",
    )
    model_cache_dir: Path | None = Field(
        None,
        description="Where GGUF files are converted once into Hugging Face folders. "
        "Empty: $XDG_CACHE_HOME/kbqa/models (~/.cache/kbqa/models).",
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when present, else CPU.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto: float32 on CPU (bf16 is slower there), bfloat16 on CUDA."
    )
    num_threads: int = Field(
        0,
        ge=0,
        description="CPU threads for the model (torch or llama.cpp). 0: all cores but one, which stays free for the "
        "HTTP side and neighbours (a thread sharing a busy core stalls every step; measured 5x slower with torch "
        "and 20x with llama.cpp on 2 cores).",
    )
    kv_cache_tokens: int = Field(
        16384,
        ge=256,
        le=4_194_304,
        description="llama.cpp: KV-cache cells, allocated at start. Each running request gets a slot of "
        "context_length cells (default 4096), so this / context_length requests decode at once (at most "
        "max_batch_size; the rest wait): 4 by default. ~28 KB per cell for Qwen2.5-1.5B, ~12 KB for 0.5B, ~23 KB "
        "for SmolLM2-135M (360 MiB at the default).",
    )
    max_batch_size: int = Field(32, ge=1, description="Most sequences decoded together in one forward pass.")
    max_queue_size: int = Field(
        256,
        ge=0,
        description="Requests waiting for a batch slot beyond this are refused with 503 + Retry-After.",
    )
    max_prefill_tokens: int = Field(
        4096, ge=1, description="Prompt tokens prefilled together when new requests join the batch."
    )
    default_max_tokens: int | None = Field(
        None,
        ge=1,
        description="Completion length when a request gives none. Empty: whatever room the context has left.",
    )
    context_length: int | None = Field(
        None,
        ge=1,
        description="Override the model's context length (read from its config otherwise; llama.cpp: at most 4096 "
        "unless set here, since it allocates each slot's cells up front).",
    )
    embedding_batch_size: int = Field(32, ge=1, description="Texts per forward pass of the embedding backend.")
    retry_after_s: int = Field(1, ge=0, description="Retry-After sent with an overload answer.")


class OpenAIServerSettings(_Section):
    host: str = Field("127.0.0.1", description="Interface the OpenAI-compatible server binds to.")
    port: int = Field(8000, ge=1, le=65535, description="OpenAI-compatible server port.")
    controller_address: str = Field("http://127.0.0.1:21001", description="Controller that knows the workers.")
    api_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Bearer keys accepted on every route. Empty: no authentication (bind to loopback then).",
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins allowed by CORS (credentials allowed), each scheme://host[:port]; '*' and "
        "'null' are refused. Empty: CORS off.",
    )
    web_client: bool = Field(
        True,
        description="Serve the plain-JavaScript chat page (examples/web-client/index.html) at /ui. The page holds "
        "no secrets, so it is served without an API key; the calls it makes need one like any other client.",
    )
    worker_timeout_s: float = Field(
        600.0, gt=0, description="Longest silence tolerated from a worker while it generates."
    )
    dispatch_attempts: int = Field(
        3, ge=1, description="Workers tried for one request when earlier ones turn out dead."
    )
    model_list_ttl_s: float = Field(
        2.0, ge=0, description="Seconds a model list from the controller is reused before asking again."
    )
    retry_after_s: int = Field(1, ge=0, description="Retry-After sent when no worker can take a request.")
    embedding_models: list[str] = Field(
        default_factory=lambda: ["multilingual-e5-small"],
        description="Embedding models (names from `embedding.models`) this server runs itself for /v1/embeddings, "
        "loaded on first use and listed in /v1/models. In-process multilingual-e5-small adds 47 MiB to this server, "
        "where an embedding worker process takes 595 MiB. Empty: only workers embed.",
    )

    @field_validator("allowed_origins")
    @classmethod
    def _exact_origins(cls, origins: list[str]) -> list[str]:
        # Credentials are allowed, and a wildcard with credentials lets any web page act as the user.
        return check_origins(origins)


class ClientSettings(_Section):
    base_url: str = Field(
        "http://127.0.0.1:8000/v1",
        description="OpenAI-compatible endpoint kbqa talks to: ours, vLLM (http://host:8000/v1), "
        "Ollama (http://host:11434/v1) or a cloud API.",
    )
    api_key: SecretStr | None = Field(None, description="Bearer key for that endpoint, if it needs one.")
    model: str = Field("SmolLM2-135M-Instruct", description="Chat model name as the endpoint knows it.")
    embedding_model: str = Field("multilingual-e5-small", description="Embedding model name as the endpoint knows it.")
    timeout_s: float = Field(120.0, gt=0, description="Per-request timeout (the stream's idle time for streams).")
    max_retries: int = Field(2, ge=0, description="Retries on connection errors, 429 and 503 (honouring Retry-After).")
    temperature: float = Field(0.7, ge=0, le=2, description="Default sampling temperature.")
    max_tokens: int | None = Field(512, ge=1, description="Default completion length; empty: the server decides.")


class LLMSettings(_Section):
    controller: ControllerSettings = Field(default_factory=ControllerSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    openai_server: OpenAIServerSettings = Field(default_factory=OpenAIServerSettings)
    client: ClientSettings = Field(default_factory=ClientSettings)
