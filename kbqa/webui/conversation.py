"""The chat page's conversation: its turns, the history sent with a question, and the Markdown export. Plain data,
no Streamlit calls, so it is easy to test."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from kbqa.webui.i18n import text
from kbqa.webui.models import Source

Mode = Literal["kb", "llm", "file"]
MODES: tuple[Mode, ...] = ("kb", "llm", "file")


def mode_name(mode: Mode, lang: str = "en") -> str:
    return text(lang, f"mode_{mode}")


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

    def to_markdown(self, now: datetime | None = None, lang: str = "en") -> str:
        """The whole conversation with its sources, for the export button (in the UI's language)."""
        stamp = (now or datetime.now()).strftime("%Y-%m-%d %H:%M")
        lines = [f"# {text(lang, 'export_title', stamp=stamp)}", ""]
        for i, turn in enumerate(self.turns, start=1):
            where = f" — {turn.target}" if turn.target else ""
            question = f"{text(lang, 'export_question')} {turn.question}"
            lines += [f"## {i}. {mode_name(turn.mode, lang)}{where}", "", question, ""]
            if turn.error:
                lines += [f"{text(lang, 'export_error')} {turn.error}", ""]
            lines += [text(lang, "export_answer"), "", turn.answer or text(lang, "export_no_answer"), ""]
            if turn.sources:
                lines += [text(lang, "export_sources"), ""]
                for s in turn.sources:
                    lines.append(f"{s.index}. {describe_source(s, lang=lang)}")
                lines.append("")
        return "\n".join(lines).rstrip() + "\n"


def describe_source(source: Source, *, with_relevance: bool = True, lang: str = "en") -> str:
    """``file (page 3, "Heading") — relevance 0.89``"""
    where = []
    if source.page is not None:
        where.append(text(lang, "loc_page", value=source.page))
    if source.heading:
        where.append(f'"{source.heading}"')
    described = source.file + (f" ({', '.join(where)})" if where else "")
    if with_relevance and source.relevance is not None:
        described += text(lang, "source_relevance", value=source.relevance)
    return described
