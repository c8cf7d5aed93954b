"""Wire models: controller ↔ worker, OpenAI server ↔ worker, and the OpenAI API itself.

Worker streams are newline-delimited JSON of :class:`GenerateEvent` *deltas* (never the cumulative text, which is what
made FastChat's streams O(n²)). OpenAI request models forbid unknown fields and reject the ones we cannot honour, so
nothing a client asks for is dropped silently.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Open(BaseModel):
    """Responses and loosely specified inputs: extra keys are kept, not refused."""

    model_config = ConfigDict(extra="allow")


# Bounds of every request field: past them a request is refused with 400 before any worker is asked. Far above real
# use (a 128k-token context is ~500k characters), far below what would cost the server or overflow a C integer.
NAME_MAX = 256  # model names, roles, ids, user tags
URL_MAX = 2048
TEXT_MAX = 1_000_000  # one message, prompt or input text
LIST_MAX = 2048  # messages, prompts, inputs, token ids lists
TOKENS_MAX = 1_000_000  # max_tokens, token ids (the worker checks ids against its vocabulary)
STOP_MAX = 16
LOGPROBS_MAX = 20  # OpenAI's bound on top_logprobs
SEED_MIN, SEED_MAX = -(2**63), 2**63 - 1  # torch generators take 64-bit seeds

Name = Annotated[str, Field(max_length=NAME_MAX)]
Text = Annotated[str, Field(max_length=TEXT_MAX)]
StopText = Annotated[str, Field(max_length=NAME_MAX)]
TokenId = Annotated[int, Field(ge=0, le=TOKENS_MAX * 100)]


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


# ----------------------------------------------------------------------------------------------------------------
# Worker protocol
# ----------------------------------------------------------------------------------------------------------------
class SamplingParams(_Wire):
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(-1, le=TOKENS_MAX, description="-1 or 0: off.")
    repetition_penalty: float = Field(1.0, gt=0.0, le=10.0)
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    seed: int | None = Field(None, ge=SEED_MIN, le=SEED_MAX)
    max_tokens: int | None = Field(None, ge=1, le=TOKENS_MAX)
    stop: list[StopText] = Field(default_factory=list, max_length=STOP_MAX)
    stop_token_ids: list[TokenId] = Field(default_factory=list, max_length=STOP_MAX)
    ignore_eos: bool = False
    logprobs: int | None = Field(
        None, ge=0, le=LOGPROBS_MAX, description="Report each token's logprob and this many alternatives; None: off."
    )

    @field_validator("top_k")
    @classmethod
    def _top_k(cls, value: int) -> int:
        if value < -1:
            raise ValueError("top_k must be -1 (off) or >= 1")
        return value

    @field_validator("stop")
    @classmethod
    def _stop(cls, value: list[str]) -> list[str]:
        if any(not s for s in value):
            raise ValueError("stop strings must not be empty")
        return value

    @property
    def greedy(self) -> bool:
        return self.temperature < 1e-5


class WorkerMessage(_Wire):
    role: Name
    content: Text = ""
    name: Name | None = None
    tool_calls: list[dict[str, Any]] | None = Field(None, max_length=LIST_MAX)
    tool_call_id: Name | None = None


class GenerateRequest(_Wire):
    """One completion. Exactly one of ``prompt``, ``prompt_token_ids`` or ``messages``."""

    model: Name
    prompt: Text | None = None
    prompt_token_ids: list[TokenId] | None = Field(None, max_length=TOKENS_MAX)
    messages: list[WorkerMessage] | None = Field(None, max_length=LIST_MAX)
    params: SamplingParams = Field(default_factory=SamplingParams)
    echo: bool = False
    request_id: Name | None = None

    @model_validator(mode="after")
    def _one_input(self) -> GenerateRequest:
        given = [x is not None for x in (self.prompt, self.prompt_token_ids, self.messages)]
        if sum(given) != 1:
            raise ValueError("give exactly one of prompt, prompt_token_ids, messages")
        if self.messages is not None and not self.messages:
            raise ValueError("messages must not be empty")
        if self.prompt_token_ids is not None and not self.prompt_token_ids:
            raise ValueError("prompt_token_ids must not be empty")
        return self


FinishReason = Literal["stop", "length"]


class Usage(_Open):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ErrorBody(_Open):
    message: str
    type: str = "server_error"
    param: str | None = None
    code: str | None = None


class TopLogprob(_Open):
    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprob(_Open):
    """OpenAI's per-token entry of ``choices[].logprobs.content``."""

    token: str
    logprob: float
    bytes: list[int] | None = None
    top_logprobs: list[TopLogprob] = Field(default_factory=list)


class GenerateEvent(_Wire):
    """One line of a worker stream: a text delta, and on the last line the finish reason and usage."""

    text: str = ""
    logprobs: list[TokenLogprob] | None = Field(None, description="The tokens behind this delta, when asked for.")
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    error: ErrorBody | None = None
    status: int | None = Field(None, description="HTTP status of `error`.")


class GenerateResult(_Wire):
    text: str
    logprobs: list[TokenLogprob] | None = None
    finish_reason: FinishReason
    usage: Usage


class EmbeddingsRequest(_Wire):
    model: Name
    input: list[Text] = Field(min_length=1, max_length=LIST_MAX)


class EmbeddingsResult(_Wire):
    embeddings: list[list[float]]
    token_count: int


class CountTokensRequest(_Wire):
    model: Name | None = None
    prompt: Text | None = None
    messages: list[WorkerMessage] | None = Field(None, max_length=LIST_MAX)


class CountTokensResult(_Wire):
    count: int


ModelKind = Literal["chat", "embedding"]


class ModelDetails(_Wire):
    model_names: list[str]
    kind: ModelKind
    context_length: int
    device: str = "cpu"
    dtype: str = "float32"
    embedding_dim: int | None = None
    max_batch_size: int = 1


class WorkerStatus(_Wire):
    model_names: list[Name] = Field(max_length=64)
    kind: ModelKind = "chat"
    speed: float = Field(1.0, ge=0.0, le=1e6)
    queue_length: int = Field(0, ge=0, le=10**9)
    context_length: int | None = Field(None, ge=1, le=10**9)


# ----------------------------------------------------------------------------------------------------------------
# Controller protocol (FastChat's route names and field names where they fit)
# ----------------------------------------------------------------------------------------------------------------
class RegisterWorkerRequest(_Wire):
    worker_name: str = Field(max_length=URL_MAX, description="The worker's URL; its identity.")
    check_heart_beat: bool = True
    worker_status: WorkerStatus | None = None
    multimodal: bool = False


class WorkerInfoOut(_Wire):
    worker_name: str
    model_names: list[str]
    kind: ModelKind
    speed: float
    queue_length: int
    in_flight: int
    check_heart_beat: bool
    last_heart_beat: float
    context_length: int | None = None


class RegisterWorkerResponse(_Wire):
    registered: bool
    worker: WorkerInfoOut


class HeartbeatRequest(_Wire):
    worker_name: str = Field(max_length=URL_MAX)
    queue_length: int = Field(0, ge=0, le=10**9)


class HeartbeatResponse(_Wire):
    exist: bool


class ListModelsResponse(_Wire):
    models: list[str]


class ModelEntry(_Wire):
    id: str
    kind: ModelKind
    context_length: int | None = None
    workers: int


class ModelsDetailResponse(_Wire):
    models: list[ModelEntry]


class GetWorkerAddressRequest(_Wire):
    model: Name
    exclude: list[Annotated[str, Field(max_length=URL_MAX)]] = Field(
        default_factory=list, max_length=1024, description="Workers already tried for this request."
    )


class GetWorkerAddressResponse(_Wire):
    address: str = Field(description="Empty when no live worker serves the model (FastChat's convention).")


class WorkerRefRequest(_Wire):
    worker_name: str = Field(max_length=URL_MAX)
    reason: str | None = Field(None, max_length=URL_MAX)


class ListWorkersResponse(_Wire):
    workers: list[WorkerInfoOut]


class HealthResponse(_Wire):
    status: Literal["ok"] = "ok"
    detail: dict[str, Any] = Field(default_factory=dict)


# ----------------------------------------------------------------------------------------------------------------
# OpenAI API: requests
# ----------------------------------------------------------------------------------------------------------------
class TextPart(_Wire):
    type: Literal["text"]
    text: Text


class OtherPart(_Open):
    type: Name

    @model_validator(mode="after")
    def _refuse(self) -> OtherPart:
        raise ValueError(f"content parts of type {self.type!r} are not supported; this server handles text only")


ContentPart = Annotated[TextPart | OtherPart, Field(union_mode="left_to_right")]


class ChatMessage(_Wire):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Text | Annotated[list[ContentPart], Field(max_length=LIST_MAX)] | None = None
    name: Name | None = None
    tool_calls: list[dict[str, Any]] | None = Field(None, max_length=LIST_MAX)
    tool_call_id: Name | None = None
    refusal: Text | None = None

    @model_validator(mode="after")
    def _shape(self) -> ChatMessage:
        if self.content is None and self.role != "assistant":
            raise ValueError(f"content is required for role {self.role!r}")
        if self.content is None and not self.tool_calls and self.refusal is None:
            raise ValueError("an assistant message needs content, tool_calls or refusal")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("tool messages need tool_call_id")
        if self.tool_calls is not None and self.role != "assistant":
            raise ValueError("only assistant messages carry tool_calls")
        return self

    def text(self) -> str:
        if self.content is None:
            return self.refusal or ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content if isinstance(part, TextPart))


class StreamOptions(_Wire):
    include_usage: bool = False
    include_obfuscation: bool | None = Field(None, description="Accepted; this server never adds obfuscation.")


class ResponseFormat(_Open):
    type: Name

    @model_validator(mode="after")
    def _text_only(self) -> ResponseFormat:
        if self.type != "text":
            raise ValueError(f"response_format {self.type!r} is not supported; only 'text'")
        return self


def _refuse_if_set(name: str, value: Any, allowed: tuple[Any, ...] = (None,)) -> None:
    if value not in allowed and value != [] and value != {}:
        raise ValueError(f"{name} is not supported by this server")


class _SamplingFields(_Wire):
    """Fields shared by chat and text completions.

    Honoured: temperature, top_p, n, seed, stop, presence/frequency_penalty, stream, stream_options.include_usage,
    and the extensions top_k, repetition_penalty and ignore_eos (OpenAI clients send them through ``extra_body``).
    Accepted and without effect (documented): user, metadata, store, service_tier. Refused with 400: logit_bias,
    logprobs/top_logprobs, and anything not declared here.
    """

    model: Name
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    n: int = Field(1, ge=1, le=16)
    seed: int | None = Field(None, ge=SEED_MIN, le=SEED_MAX - 16, description="choice i samples with seed + i")
    stop: StopText | Annotated[list[StopText], Field(max_length=STOP_MAX)] | None = None
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    stream: bool = False
    stream_options: StreamOptions | None = None
    logit_bias: dict[str, float] | None = Field(None, max_length=LIST_MAX)
    user: Name | None = None
    metadata: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=512)]] | None = Field(
        None, max_length=16
    )
    store: bool | None = None
    service_tier: Name | None = None
    top_k: int | None = Field(None, ge=-1, le=TOKENS_MAX)
    repetition_penalty: float | None = Field(None, gt=0.0, le=10.0)
    ignore_eos: bool = Field(False, description="Extension (vLLM's name): keep generating past EOS; for benchmarks.")

    @field_validator("stop")
    @classmethod
    def _stop(cls, value: str | list[str] | None) -> str | list[str] | None:
        items = [value] if isinstance(value, str) else (value or [])
        if len(items) > 16:
            raise ValueError("at most 16 stop sequences")
        if any(not s for s in items):
            raise ValueError("stop sequences must not be empty")
        return value

    @model_validator(mode="after")
    def _common_checks(self) -> _SamplingFields:
        _refuse_if_set("logit_bias", self.logit_bias)
        if self.stream_options is not None and not self.stream:
            raise ValueError("stream_options is only allowed when stream is true")
        if self.top_k == 0:
            raise ValueError("top_k must be -1 (off) or >= 1")
        return self

    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def include_usage(self) -> bool:
        return bool(self.stream and self.stream_options and self.stream_options.include_usage)

    def sampling(self, max_tokens: int | None, choice_index: int, logprobs: int | None = None) -> SamplingParams:
        # With n > 1 and a seed, each choice gets its own seed so the n choices differ yet stay reproducible.
        seed = None if self.seed is None else self.seed + choice_index
        return SamplingParams(
            temperature=1.0 if self.temperature is None else self.temperature,
            top_p=1.0 if self.top_p is None else self.top_p,
            top_k=-1 if self.top_k is None else self.top_k,
            repetition_penalty=1.0 if self.repetition_penalty is None else self.repetition_penalty,
            presence_penalty=self.presence_penalty or 0.0,
            frequency_penalty=self.frequency_penalty or 0.0,
            seed=seed,
            max_tokens=max_tokens,
            stop=self.stop_list(),
            ignore_eos=self.ignore_eos,
            logprobs=logprobs,
        )


class ChatCompletionRequest(_SamplingFields):
    messages: list[ChatMessage] = Field(min_length=1, max_length=LIST_MAX)
    max_tokens: int | None = Field(
        None, ge=1, le=TOKENS_MAX, description="Deprecated by OpenAI; max_completion_tokens wins."
    )
    max_completion_tokens: int | None = Field(None, ge=1, le=TOKENS_MAX)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=LOGPROBS_MAX)
    tools: list[dict[str, Any]] | None = Field(None, max_length=128)
    tool_choice: Name | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    modalities: list[Name] | None = Field(None, max_length=8)
    reasoning_effort: Name | None = None
    functions: list[dict[str, Any]] | None = Field(None, max_length=128)
    function_call: Name | dict[str, Any] | None = None

    @model_validator(mode="after")
    def _chat_checks(self) -> ChatCompletionRequest:
        if self.top_logprobs and not self.logprobs:
            raise ValueError("top_logprobs requires logprobs: true")
        _refuse_if_set("tools", self.tools)
        _refuse_if_set("tool_choice", self.tool_choice, (None, "none", "auto"))
        _refuse_if_set("functions", self.functions)
        _refuse_if_set("function_call", self.function_call, (None, "none", "auto"))
        _refuse_if_set("reasoning_effort", self.reasoning_effort)
        if self.modalities is not None and self.modalities != ["text"]:
            raise ValueError("only the text modality is supported")
        return self

    def completion_limit(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens

    def logprobs_asked(self) -> int | None:
        """Alternatives per token for the worker, or None when no logprobs are wanted."""
        return (self.top_logprobs or 0) if self.logprobs else None


class CompletionRequest(_SamplingFields):
    prompt: (
        Text
        | Annotated[list[Text], Field(max_length=LIST_MAX)]
        | Annotated[list[TokenId], Field(max_length=TOKENS_MAX)]
        | Annotated[list[Annotated[list[TokenId], Field(max_length=TOKENS_MAX)]], Field(max_length=LIST_MAX)]
    )
    max_tokens: int | None = Field(16, ge=1, le=TOKENS_MAX)
    echo: bool = False
    logprobs: int | None = Field(None, ge=0, le=5)
    best_of: int | None = Field(None, ge=1, le=16)
    suffix: Text | None = None

    @model_validator(mode="after")
    def _completion_checks(self) -> CompletionRequest:
        _refuse_if_set("logprobs", self.logprobs)
        _refuse_if_set("suffix", self.suffix, (None, ""))
        if self.best_of is not None and self.best_of != self.n:
            raise ValueError("best_of other than n is not supported")
        if isinstance(self.prompt, list) and not self.prompt:
            raise ValueError("prompt must not be empty")
        if isinstance(self.prompt, list) and any(isinstance(p, list) and not p for p in self.prompt):
            raise ValueError("token prompts must not be empty")
        return self

    def prompts(self) -> list[str | list[int]]:
        """The prompt as a batch: strings and token-id lists."""
        if isinstance(self.prompt, str):
            return [self.prompt]
        if all(isinstance(p, int) for p in self.prompt):
            return [list(self.prompt)]  # type: ignore[arg-type]
        return list(self.prompt)  # type: ignore[arg-type]


class EmbeddingRequest(_Wire):
    model: Name
    input: (
        Text
        | Annotated[list[Text], Field(max_length=LIST_MAX)]
        | Annotated[list[TokenId], Field(max_length=TOKENS_MAX)]
        | Annotated[list[Annotated[list[TokenId], Field(max_length=TOKENS_MAX)]], Field(max_length=LIST_MAX)]
    ) = Field(
        description="Text(s), or tiktoken cl100k_base token ids (one array or a batch), decoded back to text",
    )
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1, le=65_536)
    user: Name | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> EmbeddingRequest:
        if isinstance(self.input, list) and not self.input:
            raise ValueError("input must not be empty")
        return self

    def token_arrays(self) -> list[list[int]] | None:
        """The input as a batch of token arrays, or None when it is text."""
        if isinstance(self.input, str) or all(isinstance(x, str) for x in self.input):
            return None
        if all(isinstance(x, int) for x in self.input):
            return [list(self.input)]  # type: ignore[arg-type]
        return [list(x) for x in self.input]  # type: ignore[union-attr]

    def texts(self) -> list[str]:
        """The input as a batch of strings (for token-array input, see :meth:`token_arrays`)."""
        return [self.input] if isinstance(self.input, str) else list(self.input)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------------------------
# OpenAI API: responses
# ----------------------------------------------------------------------------------------------------------------
def _now() -> int:
    return int(time.time())


class ModelCard(_Open):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(default_factory=_now)
    owned_by: str = "kbqa"


class ModelList(_Open):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ResponseMessage(_Open):
    role: Literal["assistant"] = "assistant"
    content: str | None = None
    refusal: str | None = None


class ChoiceLogprobs(_Open):
    content: list[TokenLogprob] | None = None
    refusal: list[TokenLogprob] | None = None


class ChatChoice(_Open):
    index: int
    message: ResponseMessage
    logprobs: ChoiceLogprobs | None = None
    finish_reason: FinishReason


class ChatCompletion(_Open):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=_now)
    model: str
    choices: list[ChatChoice]
    usage: Usage
    system_fingerprint: str | None = None


class ChunkDelta(_Open):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChatChunkChoice(_Open):
    index: int
    delta: ChunkDelta
    logprobs: ChoiceLogprobs | None = None
    finish_reason: FinishReason | None = None


class ChatCompletionChunk(_Open):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None


class CompletionChoice(_Open):
    index: int
    text: str
    logprobs: None = None
    finish_reason: FinishReason | None = None


class Completion(_Open):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=_now)
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None


class EmbeddingData(_Open):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingUsage(_Open):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(_Open):
    object: Literal["list"] = "list"
    data: list[EmbeddingData]
    model: str
    usage: EmbeddingUsage


class ErrorEnvelope(_Wire):
    error: ErrorBody
