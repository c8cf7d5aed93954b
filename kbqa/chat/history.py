"""Chat history as Chatchat's clients send it: ``{"role", "content"}`` objects or ``[role, content]`` pairs."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, model_validator

_ROLE_ALIASES = {"ai": "assistant", "human": "user", "bot": "assistant"}


class History(BaseModel):
    role: str = Field(..., max_length=32, examples=["user"])
    content: str = Field(..., max_length=100_000, examples=["你好"])

    @model_validator(mode="before")
    @classmethod
    def _from_pair(cls, data: Any) -> Any:
        if isinstance(data, list | tuple):
            if len(data) != 2:
                raise ValueError("a history item given as a list must be [role, content]")
            data = {"role": data[0], "content": data[1]}
        if isinstance(data, dict) and isinstance(data.get("role"), str):
            role = data["role"].strip().lower()
            data = {**data, "role": _ROLE_ALIASES.get(role, role)}
        return data

    def message(self) -> dict[str, str]:
        role = self.role if self.role in ("user", "assistant", "system") else "user"
        return {"role": role, "content": self.content}


def as_messages(history: list[History]) -> list[dict[str, str]]:
    return [h.message() for h in history]
