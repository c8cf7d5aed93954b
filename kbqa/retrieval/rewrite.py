"""Multi-turn retrieval: a follow-up question is rewritten into a standalone one before it is searched.

"And how do I delete it?" means nothing to an index; "How do I delete a knowledge base?" does. The rewrite goes
through the configured LLM; when there is no history, no client, or the LLM fails, the question is used as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Protocol

log = logging.getLogger(__name__)

REWRITE_PROMPT = (
    "Rewrite the user's last question as one standalone question that can be understood without the conversation. "
    "Keep its language (answer in Chinese if the question is Chinese). Output only the rewritten question.\n\n"
    "Conversation:\n{history}\n\nLast question: {question}\nStandalone question:"
)
MAX_TURNS = 6


class ChatClient(Protocol):
    def chat(self, messages: list[dict[str, Any]], **options: Any) -> Any: ...


def _history_text(history: Sequence[dict[str, Any]]) -> str:
    lines = []
    for turn in list(history)[-MAX_TURNS:]:
        role = "User" if turn.get("role") in ("user", "human") else "Assistant"
        content = str(turn.get("content") or "").strip().replace("\n", " ")
        if content:
            lines.append(f"{role}: {content[:500]}")
    return "\n".join(lines)


def rewrite_query(question: str, history: Sequence[dict[str, Any]] | None, client: ChatClient | None) -> str:
    if not history or client is None:
        return question
    convo = _history_text(history)
    if not convo:
        return question
    prompt = REWRITE_PROMPT.format(history=convo, question=question)
    try:
        result = client.chat([{"role": "user", "content": prompt}], temperature=0.0, max_tokens=96)
    except Exception as exc:  # any LLM failure: searching the raw question beats failing the request
        log.warning("query rewrite failed, searching the question as asked: %s", exc)
        return question
    text = str(getattr(result, "text", result) or "").strip().splitlines()
    rewritten = text[0].strip().strip('"“”') if text else ""
    if not rewritten or len(rewritten) > 3 * len(question) + 200:
        return question
    return rewritten
