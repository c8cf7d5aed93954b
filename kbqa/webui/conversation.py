"""The chat page's conversation: its turns, the history sent with a question, and the Markdown export. Plain data,
no Streamlit, so it is easy to test."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from kbqa.webui.models import Source

Mode = Literal["kb", "llm", "file"]
MODE_NAMES: dict[Mode, str] = {"kb": "Knowledge base chat", "llm": "LLM chat", "file": "File chat"}


@dataclass
class Turn:
    """One question and its answer."""

    question: str
    mode: Mode
    target: str = ""  # the knowledge base, or the uploaded files, the question was asked of
    answer: str = ""
    sources: list[Source] = field(default_factory=list)
    message_id: str | None = None  # set when the server recorded the answer: feedback can then be given
    error: str | None = None
    feedback_sent: bool = False
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])


@dataclass
class Conversation:
    turns: list[Turn] = field(default_factory=list)
    # Sent with LLM chats so the server records them under one conversation (feedback needs the message ids).
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def history(self, pairs: int) -> list[dict[str, str]]:
        """The last ``pairs`` answered turns as chat messages, oldest first; failed turns are left out."""
        if pairs <= 0:
            return []
        answered = [t for t in self.turns if t.answer and not t.error][-pairs:]
        messages: list[dict[str, str]] = []
        for turn in answered:
            messages += [{"role": "user", "content": turn.question}, {"role": "assistant", "content": turn.answer}]
        return messages

    def to_markdown(self, now: datetime | None = None) -> str:
        """The whole conversation with its sources, for the export button."""
        stamp = (now or datetime.now()).strftime("%Y-%m-%d %H:%M")
        lines = [f"# kbqa conversation ({stamp})", ""]
        for i, turn in enumerate(self.turns, start=1):
            where = f" — {turn.target}" if turn.target else ""
            lines += [f"## {i}. {MODE_NAMES[turn.mode]}{where}", "", f"**Question:** {turn.question}", ""]
            if turn.error:
                lines += [f"**Error:** {turn.error}", ""]
            lines += ["**Answer:**", "", turn.answer or "_(no answer)_", ""]
            if turn.sources:
                lines += ["**Sources:**", ""]
                for s in turn.sources:
                    lines.append(f"{s.index}. {describe_source(s)}")
                lines.append("")
        return "\n".join(lines).rstrip() + "\n"


def describe_source(source: Source, *, with_relevance: bool = True) -> str:
    """``file (page 3, "Heading") — relevance 0.89``"""
    where = []
    if source.page is not None:
        where.append(f"page {source.page}")
    if source.heading:
        where.append(f'"{source.heading}"')
    text = source.file + (f" ({', '.join(where)})" if where else "")
    if with_relevance and source.relevance is not None:
        text += f" — relevance {source.relevance:.2f}"
    return text
