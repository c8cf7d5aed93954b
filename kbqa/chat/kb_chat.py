"""Knowledge-base chat: retrieve, ground the prompt in the hits, stream the LLM's answer, cite the sources.

Used by /chat/knowledge_base_chat, /chat/file_chat and the KB-as-model OpenAI endpoint. The LLM is only ever reached
over HTTP through :mod:`kbqa.llm.client`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool

from kbqa.api.settings import APISettings
from kbqa.chat.answerability import AnswerabilityGate
from kbqa.chat.grounding import KB_USER, grounded_messages
from kbqa.chat.language import Language, detect_language
from kbqa.chat.prompts import PromptTemplates
from kbqa.chat.records import ChatRecords
from kbqa.chat.retrieval import Searcher
from kbqa.chat.sources import chatchat_docs, sources_of
from kbqa.knowledge.service import SearchHit
from kbqa.llm.client import AsyncLLMClient, LLMClient

log = logging.getLogger(__name__)


@dataclass
class LLMOptions:
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None

    def kwargs(self) -> dict[str, Any]:
        # Chatchat treats max_tokens <= 0 as "not set".
        max_tokens = self.max_tokens if self.max_tokens and self.max_tokens > 0 else None
        return {"model": self.model or None, "temperature": self.temperature, "max_tokens": max_tokens}


@dataclass
class Grounded:
    messages: list[dict[str, str]]
    sources: list[dict[str, Any]]
    docs: list[str]
    fixed_answer: str | None  # set when nothing was found and the configured empty answer applies
    question: str = ""
    language: Language = "en"
    # The gate's probability that the sources hold the answer (None: no gate ran); a refusal sets fixed_answer.
    answerability: float | None = None


def _rewriter() -> Callable[..., str] | None:
    try:
        from kbqa.retrieval.rewrite import rewrite_query
    except ImportError:
        return None
    return rewrite_query


class KBChat:
    def __init__(
        self,
        api: APISettings,
        prompts: PromptTemplates,
        searcher: Searcher,
        client: AsyncLLMClient,
        sync_client: LLMClient,
    ) -> None:
        self.api = api
        self.prompts = prompts
        self.searcher = searcher
        self.client = client
        self.sync_client = sync_client
        self.gate = AnswerabilityGate(prompts, client)

    # --- retrieval (blocking: call from a worker thread) ---------------------------------------------------------
    def search_query(self, query: str, history: list[dict[str, str]]) -> str:
        """The question to retrieve with: rewritten into a standalone one when there is history."""
        rewrite = _rewriter() if self.api.rewrite_with_history and history else None
        if rewrite is None:
            return query
        try:
            return rewrite(query, history, self.sync_client) or query
        except Exception:  # a failed rewrite must not fail the chat: fall back to the raw question
            log.warning("query rewrite failed; retrieving with the raw question", exc_info=True)
            return query

    def retrieve(
        self, kbs: str | Sequence[str], query: str, history: list[dict[str, str]], top_k: int, threshold: float
    ) -> list[SearchHit]:
        return self.searcher(kbs, self.search_query(query, history), top_k, threshold)

    # --- prompt -------------------------------------------------------------------------------------------------
    def options(self, model: str | None, temperature: float | None, max_tokens: int | None) -> LLMOptions:
        """A request's own values win; what it leaves empty (Chatchat's max_tokens 0 or -1 too) comes from
        ``api.kb_chat_temperature`` / ``api.kb_chat_max_tokens``: grounded answers want little sampling and few
        tokens."""
        return LLMOptions(
            model,
            self.api.kb_chat_temperature if temperature is None else temperature,
            max_tokens if max_tokens and max_tokens > 0 else self.api.kb_chat_max_tokens,
        )

    def refusal(self, language: Language) -> str:
        return self.api.refusal_zh if language == "zh" else self.api.refusal_en

    def ground(
        self,
        hits: list[SearchHit],
        question: str,
        history: list[dict[str, str]],
        prompt_name: str,
        base_url: str | None,
    ) -> Grounded:
        sources = sources_of(hits, base_url)
        language = detect_language(question)
        if hits:
            messages = grounded_messages(
                self.prompts, prompt_name, question, sources, language, self.refusal(language), history
            )
        else:
            if self.api.empty_answer:
                docs = chatchat_docs([], llm_answered_without_docs=False)
                return Grounded([], [], docs, self.api.empty_answer, question, language)
            # Nothing to ground in: the LLM answers on its own (Chatchat's behaviour), so no source instruction.
            prompt = self.prompts.render(KB_USER, "empty", question=question, context="", sources=[], language=language)
            messages = [*history, {"role": "user", "content": prompt}]
        docs = chatchat_docs(sources, llm_answered_without_docs=True)
        return Grounded(messages, sources, docs, None, question, language)

    # --- answer -------------------------------------------------------------------------------------------------
    async def check(self, grounded: Grounded, options: LLMOptions) -> None:
        """The answerability gate (api.answerability_gate): a refusal, with the sources looked at, when the LLM
        judges that they do not hold the answer."""
        if not self.api.answerability_gate or grounded.fixed_answer is not None or not grounded.sources:
            return
        threshold = self.answerability_threshold(options.model)
        if threshold is None:
            return  # a model too small to judge: no gate, and no cost
        score = await self.gate.score(grounded.question, grounded.sources, grounded.language, options.model)
        grounded.answerability = score
        if score is not None and score < threshold:
            grounded.fixed_answer = self.refusal(grounded.language)

    def answerability_threshold(self, model: str | None) -> float | None:
        """The model's calibrated threshold (api.answerability_thresholds; None there turns the gate off for that
        model), else api.answerability_threshold."""
        name = model or self.client.settings.model
        return self.api.answerability_thresholds.get(name, self.api.answerability_threshold)

    async def stream(self, grounded: Grounded, options: LLMOptions) -> AsyncIterator[str]:
        await self.check(grounded, options)
        if grounded.fixed_answer is not None:
            yield grounded.fixed_answer
            return
        async for delta in self.client.stream_chat(grounded.messages, **options.kwargs()):
            if delta.text:
                yield delta.text

    async def complete(self, grounded: Grounded, options: LLMOptions) -> str:
        await self.check(grounded, options)
        if grounded.fixed_answer is not None:
            return grounded.fixed_answer
        return (await self.client.chat(grounded.messages, **options.kwargs())).text


async def chatchat_events(
    kb_chat: KBChat, grounded: Grounded, options: LLMOptions, stream: bool
) -> AsyncIterator[dict]:
    """Chatchat's event shapes: ``{"answer": token}``… then ``{"docs": [...]}``; one event when not streaming.
    ``sources`` (and ``answerability`` when the gate ran) ride along in the final event for new clients."""
    if stream:
        async for token in kb_chat.stream(grounded, options):
            yield {"answer": token}
        yield {"docs": grounded.docs, "sources": grounded.sources, **_gate_fields(grounded)}
    else:
        answer = await kb_chat.complete(grounded, options)
        yield {"answer": answer, "docs": grounded.docs, "sources": grounded.sources, **_gate_fields(grounded)}


def _gate_fields(grounded: Grounded) -> dict[str, Any]:
    # Not Chatchat's: new clients (and the answer evaluation) see the gate's verdict; old ones ignore the key.
    return {} if grounded.answerability is None else {"answerability": round(grounded.answerability, 4)}


async def recorded_events(events: AsyncIterator[dict], records: ChatRecords, message_id: str) -> AsyncIterator[dict]:
    """Record the answer of a KB or file chat under ``message_id`` and add the id to the event that carries the
    docs (the last one), so the client can rate the answer with /chat/feedback."""
    parts: list[str] = []
    try:
        async for event in events:
            if "answer" in event:
                parts.append(str(event["answer"]))
            if "docs" in event:
                event = {**event, "message_id": message_id}
            yield event
    finally:
        # Recorded even when the client went away mid-stream: what was generated is the response.
        await run_in_threadpool(records.set_response, message_id, "".join(parts))
