"""Answer sets: JSONL, one question per line.

Answerable: ``{"id": "en-01", "question": "...", "answers": ["Mojave Desert", "Mojave"], "file": "doc.txt"}``
(``answers``: acceptable aliases of the short answer; ``file``: the KB-relative path of the document holding it).
Unanswerable: ``{"id": "en-u01", "question": "...", "answers": []}`` (no document in the KB holds the answer);
``absent`` may list terms that must occur in no KB document (checked by the data tests, ignored when scoring).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from kbqa.errors import KBQAError


class AnswerSetError(KBQAError):
    status_code = 400


@dataclass(frozen=True)
class AnswerItem:
    id: str
    question: str
    answers: tuple[str, ...] = ()
    file: str | None = None
    absent: tuple[str, ...] = field(default=())

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


def _strings(value: object, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f"{what} must be a list of non-empty strings")
    return tuple(value)


def parse_answer_set(lines: Iterable[str]) -> list[AnswerItem]:
    items: list[AnswerItem] = []
    seen: set[str] = set()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError("not a JSON object")
            question = row["question"]
            if not isinstance(question, str) or not question.strip():
                raise ValueError("question must be a non-empty string")
            answers = _strings(row.get("answers"), "answers")
            file = row.get("file")
            if answers and not (isinstance(file, str) and file):
                raise ValueError("an answerable question needs the file holding its answer")
            item = AnswerItem(
                str(row.get("id") or n),
                question,
                answers,
                file if answers else None,
                _strings(row.get("absent"), "absent"),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise AnswerSetError(f"answer set line {n}: {exc}") from exc
        if item.id in seen:
            raise AnswerSetError(f"answer set line {n}: duplicate id {item.id!r}")
        seen.add(item.id)
        items.append(item)
    if not items:
        raise AnswerSetError("the answer set is empty")
    return items


def load_answer_set(path: Path) -> list[AnswerItem]:
    try:
        with path.open(encoding="utf-8") as fh:
            return parse_answer_set(fh)
    except OSError as exc:
        raise AnswerSetError(f"{path}: {exc.strerror}") from exc
