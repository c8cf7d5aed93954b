"""Turning a growing list of token ids into text deltas: incremental detokenization and stop strings."""

from __future__ import annotations

from typing import Any

_REPLACEMENT = "\ufffd"
# Tokens of context decoded before the new ones, so tokenizers that drop a leading space at the start of a
# decode (SentencePiece) still produce the right spacing for the delta.
_CONTEXT_TOKENS = 5


class IncrementalDetokenizer:
    """Decodes only a short window per step (not the whole output, which made FastChat's streams O(n²)).

    A token that ends inside a multi-byte UTF-8 character decodes to U+FFFD; such text is held back until the
    following tokens complete the character, so a delta never carries a broken character.
    """

    def __init__(self, tokenizer: Any, prompt_ids: list[int]) -> None:
        self._tokenizer = tokenizer
        self._ids: list[int] = list(prompt_ids[-_CONTEXT_TOKENS:])
        self._prefix = 0
        self._read = len(self._ids)

    def _decode(self, ids: list[int]) -> str:
        return self._tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def push(self, token_id: int) -> str:
        self._ids.append(token_id)
        prefix_text = self._decode(self._ids[self._prefix : self._read])
        new_text = self._decode(self._ids[self._prefix :])
        if len(new_text) <= len(prefix_text) or new_text.endswith(_REPLACEMENT):
            return ""
        self._prefix, self._read = self._read, len(self._ids)
        return new_text[len(prefix_text) :]

    def flush(self) -> str:
        """Text still held back at the end; an unfinished character at the very end is dropped, not sent broken."""
        prefix_text = self._decode(self._ids[self._prefix : self._read])
        new_text = self._decode(self._ids[self._prefix :])
        self._prefix = self._read = len(self._ids)
        tail = new_text[len(prefix_text) :] if len(new_text) > len(prefix_text) else ""
        return tail.rstrip(_REPLACEMENT)


class StopStringMatcher:
    """Finds stop strings in streamed text, holding back any tail that could be the start of one."""

    def __init__(self, stops: list[str]) -> None:
        self._stops = [s for s in stops if s]
        self._pending = ""

    def feed(self, delta: str) -> tuple[str, bool]:
        """Text safe to emit now, and whether a stop string was hit (its text and all after it are dropped)."""
        if not self._stops:
            return delta, False
        self._pending += delta
        hits = [i for i in (self._pending.find(s) for s in self._stops) if i >= 0]
        if hits:
            emit = self._pending[: min(hits)]
            self._pending = ""
            return emit, True
        hold = 0
        for stop in self._stops:
            for k in range(min(len(stop) - 1, len(self._pending)), hold, -1):
                if self._pending.endswith(stop[:k]):
                    hold = k
                    break
        cut = len(self._pending) - hold
        emit, self._pending = self._pending[:cut], self._pending[cut:]
        return emit, False

    def flush(self) -> str:
        tail, self._pending = self._pending, ""
        return tail
