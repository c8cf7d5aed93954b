"""Answer quality of a running API server: each question of an answer set goes through
``/chat/knowledge_base_chat`` (stream=true, so the first token can be timed), and the answers are scored with
:mod:`kbqa.evaluation.answer_scoring`.

Scores: ``accuracy`` (answer contains an expected alias), ``only_answer`` (and nothing much else), ``cited`` (the
expected file is among the returned sources), all over answerable questions; ``refused`` over unanswerable ones (the
goal) and ``false_refusals`` over answerable ones (the cost); median and p90 first-token and total seconds.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from kbqa.errors import KBQAError
from kbqa.evaluation.answer_scoring import cites_source, contains_answer, is_refusal, only_answer
from kbqa.evaluation.answer_set import AnswerItem
from kbqa.sse_events import iter_json

CHAT_PATH = "/chat/knowledge_base_chat"


class ChatCallError(KBQAError):
    status_code = 502


@dataclass(frozen=True)
class ChatRequestOptions:
    temperature: float = 0.0
    top_k: int = 3
    max_tokens: int = 48
    score_threshold: float | None = None  # None: the server's kb.score_threshold
    model_name: str | None = None  # None: the server's default chat model
    prompt_name: str | None = None


@dataclass
class ChatAnswer:
    answer: str
    sources: list[dict[str, Any]]
    first_token_s: float | None
    total_s: float
    answerability: float | None = None


@dataclass
class ScoredAnswer:
    id: str
    question: str
    expected: list[str]
    file: str | None
    answer: str
    sources: list[str]
    first_token_s: float | None
    total_s: float
    correct: bool | None = None
    only: bool | None = None
    cited: bool | None = None
    refused: bool = False
    answerability: float | None = None  # the server's gate score, when its gate ran


@dataclass
class AnswerReport:
    name: str
    questions: int
    answerable: int
    unanswerable: int
    accuracy: float | None
    only_answer: float | None
    cited: float | None
    refused: float | None
    refused_count: int
    false_refusals: float | None
    first_token_s_p50: float | None
    first_token_s_p90: float | None
    total_s_p50: float
    total_s_p90: float
    options: dict[str, Any] = field(default_factory=dict)
    answers: list[ScoredAnswer] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _request_body(kb: str, question: str, options: ChatRequestOptions) -> dict[str, Any]:
    body: dict[str, Any] = {
        "query": question,
        "knowledge_base_name": kb,
        "top_k": options.top_k,
        "temperature": options.temperature,
        "max_tokens": options.max_tokens,
        "stream": True,
    }
    for key in ("score_threshold", "model_name", "prompt_name"):
        value = getattr(options, key)
        if value is not None:
            body[key] = value
    return body


def ask(client: httpx.Client, kb: str, question: str, options: ChatRequestOptions) -> ChatAnswer:
    """One streamed KB chat: the answer text, the sources of the last event, and its timings."""
    parts: list[str] = []
    sources: list[dict[str, Any]] = []
    answerability: float | None = None
    first: float | None = None
    started = time.perf_counter()
    with client.stream("POST", CHAT_PATH, json=_request_body(kb, question, options)) as resp:
        if resp.status_code != 200:
            resp.read()
            raise ChatCallError(f"{CHAT_PATH} answered {resp.status_code}: {resp.text[:300]}")
        for event in iter_json(resp.iter_lines()):
            if event.get("answer"):
                if first is None:
                    first = time.perf_counter() - started
                parts.append(str(event["answer"]))
            if "sources" in event:
                sources = list(event["sources"] or [])
            if isinstance(event.get("answerability"), int | float):
                answerability = float(event["answerability"])
    return ChatAnswer("".join(parts), sources, first, time.perf_counter() - started, answerability)


def score(item: AnswerItem, reply: ChatAnswer, empty_answer: str | None) -> ScoredAnswer:
    scored = ScoredAnswer(
        id=item.id,
        question=item.question,
        expected=list(item.answers),
        file=item.file,
        answer=reply.answer,
        sources=[str(s.get("file", "")) for s in reply.sources],
        first_token_s=reply.first_token_s,
        total_s=reply.total_s,
        refused=is_refusal(reply.answer, empty_answer),
        answerability=reply.answerability,
    )
    if item.answerable:
        scored.correct = contains_answer(reply.answer, item.answers)
        scored.only = only_answer(reply.answer, item.answers)
        scored.cited = cites_source(reply.sources, item.file or "")
    return scored


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _mean(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def summarise(name: str, scored: Sequence[ScoredAnswer], options: ChatRequestOptions) -> AnswerReport:
    answerable = [s for s in scored if s.expected]
    unanswerable = [s for s in scored if not s.expected]
    firsts = [s.first_token_s for s in scored if s.first_token_s is not None]
    totals = [s.total_s for s in scored]
    return AnswerReport(
        name=name,
        questions=len(scored),
        answerable=len(answerable),
        unanswerable=len(unanswerable),
        accuracy=_mean([bool(s.correct) for s in answerable]),
        only_answer=_mean([bool(s.only) for s in answerable]),
        cited=_mean([bool(s.cited) for s in answerable]),
        refused=_mean([s.refused for s in unanswerable]),
        refused_count=sum(s.refused for s in unanswerable),
        false_refusals=_mean([s.refused for s in answerable]),
        first_token_s_p50=statistics.median(firsts) if firsts else None,
        first_token_s_p90=percentile(firsts, 90),
        total_s_p50=statistics.median(totals) if totals else 0.0,
        total_s_p90=percentile(totals, 90) or 0.0,
        options=asdict(options),
        answers=list(scored),
    )


def evaluate_answers(
    client: httpx.Client,
    kb: str,
    items: Sequence[AnswerItem],
    options: ChatRequestOptions,
    empty_answer: str | None,
    name: str | None = None,
    progress: Callable[[ScoredAnswer], None] | None = None,
) -> AnswerReport:
    """Ask every question in turn (one at a time, so the timings are single-stream) and score the answers."""
    scored = []
    for item in items:
        result = score(item, ask(client, kb, item.question, options), empty_answer)
        scored.append(result)
        if progress is not None:
            progress(result)
    return summarise(name or kb, scored, options)


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown_table(reports: Sequence[AnswerReport]) -> str:
    head = (
        "| set | questions | answer right | only the answer | unanswerable refused | false refusals "
        "| right source cited | first token p50 / p90 (s) | total p50 / p90 (s) |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    for r in reports:
        lines.append(
            f"| {r.name} | {r.answerable} + {r.unanswerable} | {_fmt(r.accuracy)} | {_fmt(r.only_answer)} "
            f"| {r.refused_count}/{r.unanswerable} | {_fmt(r.false_refusals)} | {_fmt(r.cited, 3)} "
            f"| {_fmt(r.first_token_s_p50, 1)} / {_fmt(r.first_token_s_p90, 1)} "
            f"| {_fmt(r.total_s_p50, 1)} / {_fmt(r.total_s_p90, 1)} |"
        )
    return "\n".join(lines)
