"""The grounded prompt of knowledge-base chat: an instruction in the question's language as the system message, the
retrieved chunks as numbered sources plus the question as the user message.

The numbers are the ``index`` of the ``sources`` list returned to the client, so an answer's [n] is sources[n-1].
"""

from __future__ import annotations

from typing import Any

from kbqa.chat.language import Language
from kbqa.chat.prompts import PromptTemplates

KB_USER = "knowledge_base_chat"
KB_SYSTEM = "knowledge_base_system"
# A template using one of these was written for the system message; one using only context and question (Chatchat's
# own, or an operator's old custom template) carries its own instruction and is sent alone, as before.
_GROUNDED_VARIABLES = frozenset({"sources", "language"})


def source_label(source: dict[str, Any]) -> str:
    """``(guide.md, p. 3, Install)``: the file, then the page and the heading when the chunk has them."""
    parts = [str(source["file"])]
    if source.get("page") not in (None, ""):
        parts.append(f"p. {source['page']}")
    if source.get("heading"):
        parts.append(str(source["heading"]))
    return f"({', '.join(parts)})"


def numbered_context(sources: list[dict[str, Any]]) -> str:
    return "\n\n".join(f"[{s['index']}] {source_label(s)}\n{s['text']}" for s in sources)


def grounded_messages(
    prompts: PromptTemplates,
    prompt_name: str,
    question: str,
    sources: list[dict[str, Any]],
    language: Language,
    refusal: str,
    history: list[dict[str, str]],
) -> list[dict[str, str]]:
    """The chat messages for a question with retrieved ``sources`` (history turns between system and question)."""
    variables = {"context": numbered_context(sources), "question": question, "sources": sources, "language": language}
    user = prompts.render(KB_USER, prompt_name, **variables)
    if not prompts.variables(KB_USER, prompt_name) & _GROUNDED_VARIABLES:
        return [*history, {"role": "user", "content": user}]
    system_name = prompt_name if prompts.get(KB_SYSTEM, prompt_name) is not None else "default"
    instruction = prompts.render(KB_SYSTEM, system_name, language=language, refusal=refusal, sources=sources)
    # One system message first: chat templates (SmolLM2's, Qwen's) read only a leading one. A client's own system
    # text (the OpenAI endpoint, Chatchat history) follows ours, so it can refine it.
    system = "\n\n".join(
        part for part in [instruction, *(m["content"] for m in history if m["role"] == "system")] if part.strip()
    )
    turns = [m for m in history if m["role"] != "system"]
    return [{"role": "system", "content": system}, *turns, {"role": "user", "content": user}]
