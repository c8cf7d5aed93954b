"""Plain LLM chat (/chat/chat) with conversation and message records, as Chatchat 0.2 kept them."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.concurrency import run_in_threadpool

from kbqa.chat.kb_chat import LLMOptions
from kbqa.chat.prompts import PromptTemplates
from kbqa.chat.records import ChatRecords
from kbqa.llm.client import AsyncLLMClient


class LLMChat:
    def __init__(self, prompts: PromptTemplates, records: ChatRecords, client: AsyncLLMClient) -> None:
        self.prompts = prompts
        self.records = records
        self.client = client

    def prepare(
        self,
        query: str,
        conversation_id: str,
        history: list[dict[str, str]] | None,
        history_len: int,
        prompt_name: str,
    ) -> tuple[str, list[dict[str, str]]]:
        """Record the message (blocking) and build the chat messages: explicit history wins; otherwise the last
        ``history_len`` turns of the conversation from the database, with the ``with_history`` template."""
        message_id = self.records.add_message("llm_chat", query, conversation_id)
        if history:
            prompt = self.prompts.render("llm_chat", prompt_name, input=query)
            return message_id, [*history, {"role": "user", "content": prompt}]
        if conversation_id and history_len > 0:
            turns = self.records.recent(conversation_id, history_len, exclude=message_id)
            if turns:
                text = "\n".join(f"Human: {q}\nAI: {a}" for q, a in turns)
                prompt = self.prompts.render("llm_chat", "with_history", history=text, input=query)
                return message_id, [{"role": "user", "content": prompt}]
        return message_id, [{"role": "user", "content": self.prompts.render("llm_chat", prompt_name, input=query)}]

    async def events(
        self, message_id: str, messages: list[dict[str, str]], options: LLMOptions, stream: bool
    ) -> AsyncIterator[dict]:
        """Chatchat's shapes: ``{"text": token, "message_id": id}`` per token, or one event with the whole text."""
        parts: list[str] = []
        try:
            if stream:
                async for delta in self.client.stream_chat(messages, **options.kwargs()):
                    if delta.text:
                        parts.append(delta.text)
                        yield {"text": delta.text, "message_id": message_id}
            else:
                answer = (await self.client.chat(messages, **options.kwargs())).text
                parts.append(answer)
                yield {"text": answer, "message_id": message_id}
        finally:
            # Recorded even when the client went away mid-stream: what was generated is the response.
            await run_in_threadpool(self.records.set_response, message_id, "".join(parts))
