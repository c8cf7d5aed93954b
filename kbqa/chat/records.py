"""Conversation and message records (tables ``conversation``/``message``): chat history and feedback."""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import select

from kbqa.db.engine import Database
from kbqa.db.models import Conversation, Message
from kbqa.errors import KBQAError

_CONVERSATION_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class InvalidConversation(KBQAError):
    status_code = 400


class MessageNotFound(KBQAError):
    status_code = 404


def check_conversation_id(conversation_id: str) -> str:
    if conversation_id and not _CONVERSATION_ID_RE.match(conversation_id):
        raise InvalidConversation("conversation_id must be 1-32 letters, digits, '_' or '-'")
    return conversation_id


class ChatRecords:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add_message(self, chat_type: str, query: str, conversation_id: str = "", meta: dict | None = None) -> str:
        conversation_id = check_conversation_id(conversation_id)
        message_id = uuid.uuid4().hex
        with self.db.session() as s:
            if conversation_id and s.get(Conversation, conversation_id) is None:
                s.add(Conversation(id=conversation_id, name="", chat_type=chat_type))
            s.add(
                Message(
                    id=message_id,
                    conversation_id=conversation_id,
                    chat_type=chat_type,
                    query=query,
                    response="",
                    meta=meta or {},
                )
            )
        return message_id

    def set_response(self, message_id: str, response: str, meta: dict[str, Any] | None = None) -> None:
        with self.db.session() as s:
            message = s.get(Message, message_id)
            if message is not None:
                message.response = response
                if meta:
                    message.meta = {**(message.meta or {}), **meta}

    def feedback(self, message_id: str, score: int, reason: str) -> None:
        with self.db.session() as s:
            message = s.get(Message, message_id)
            if message is None:
                raise MessageNotFound(f"message {message_id} not found")
            message.feedback_score = score
            message.feedback_reason = reason[:255]

    def recent(self, conversation_id: str, limit: int, exclude: str | None = None) -> list[tuple[str, str]]:
        """The last ``limit`` answered turns of a conversation, oldest first, as (query, response)."""
        check_conversation_id(conversation_id)
        with self.db.read() as s:
            rows = s.scalars(
                select(Message)
                .where(Message.conversation_id == conversation_id, Message.response != "")
                .order_by(Message.created_at.desc())
                .limit(limit + 1)
            ).all()
        turns = [(m.query, m.response) for m in rows if m.id != exclude][:limit]
        return list(reversed(turns))
