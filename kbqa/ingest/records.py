"""Records (a table row, a JSON object) → chunk texts cut at field boundaries.

A generic text splitter cuts a long record wherever a separator falls, which leaves pieces such as ``{`` or
``"id": 9}`` that name nothing and match anything. Here a record that fits a chunk stays one chunk; a longer one is
cut between fields, every piece repeats the record's key fields (id/title/name-like fields and other short
values), so a piece still says which row it belongs to, and a single value longer than a chunk is cut as text with
the key fields in front of each part. JSON pieces are rendered as JSON objects of their fields, so no cut ever falls
inside JSON syntax.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from kbqa.ingest.encoding import clean_text

# Names that identify a record rather than describe it: "id", "issue_id", "userId", "title", "名称" ...
_KEY_NAME = re.compile(
    r"(?:^|[_\-\s.\[\]])(?:id|uuid|key|name|title|subject|code|sku)$|[a-z0-9](?:Id|ID|Key|Name|Title|Code)$"
    r"|(?:编号|编码|名称|名字|姓名|标题|主题|题目)$",
    re.IGNORECASE,
)
# A value this short (and on one line) is worth repeating in every piece of its record: a date, a status, a count.
# One that ends a sentence is content (a glossary entry, a short answer), not a label.
_SHORT_VALUE_CHARS = 32
_SENTENCE_END = re.compile(r"[。！？.!?]$")
_MAX_RESPLITS = 4

SplitText = Callable[[str, int], list[str]]
"""(text, maximum length) → parts of at most that length, cut at sentence boundaries where possible."""


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    value: Any  # a cell's text, or a JSON scalar (str, int, float, bool)

    @property
    def text(self) -> str:
        return self.value if isinstance(self.value, str) else json.dumps(self.value, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Record:
    """The fields of one row or JSON object, and how a subset of them is written as text.

    ``pairs`` writes ``name: value; name: value`` (tabular rows); ``json`` writes a JSON object. ``whole`` is the
    whole record in its most compact form, used when it fits a chunk.
    """

    fields: tuple[Field, ...]
    style: Literal["pairs", "json"]
    whole: str

    def render(self, fields: Sequence[Field]) -> str:
        if self.style == "json":
            return json.dumps({f.name: f.value for f in fields}, ensure_ascii=False)
        return "; ".join(f"{f.name}: {f.text}" for f in fields)

    def cleaned(self) -> Record:
        """Values cleaned like every loaded text (NULs, newlines), empty ones dropped."""
        fields = []
        for f in self.fields:
            value = clean_text(f.value) if isinstance(f.value, str) else f.value
            if value != "":
                fields.append(replace(f, value=value))
        return Record(tuple(fields), self.style, clean_text(self.whole))


def table_record(values: Sequence[str], names: Callable[[int], str]) -> Record:
    """A spreadsheet/CSV row; ``names(i)`` is the column name to use for column ``i``."""
    fields = tuple(Field(names(i), value) for i, value in enumerate(values) if value)
    record = Record(fields, "pairs", "")
    return replace(record, whole=record.render(fields))


def json_record(value: Any) -> Record | None:
    """A JSON object as a record of its leaf values (nested keys joined as ``a.b`` and ``a[0]``); None otherwise."""
    if not isinstance(value, dict) or not value:
        return None
    return Record(tuple(_leaves(value, "")), "json", json.dumps(value, ensure_ascii=False))


def _leaves(value: Any, path: str) -> Iterator[Field]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}[{index}]")
    elif value is not None and value != "":
        yield Field(path, value)


def key_fields(fields: Sequence[Field], budget: int) -> list[int]:
    """Indexes of the fields every piece repeats: key-like names first, then short values, within ``budget``
    characters of rendered ``name: value`` text. Elements of a nested list (``items[3].id``) are never keys: they
    name one element, not the record."""
    own = [i for i, f in enumerate(fields) if "[" not in f.name]
    named = [i for i in own if _KEY_NAME.search(fields[i].name.strip())]
    named_set = set(named)
    short = [
        i
        for i in own
        if i not in named_set and len(fields[i].text) <= _SHORT_VALUE_CHARS and not _SENTENCE_END.search(fields[i].text)
    ]
    chosen: list[int] = []
    used = 0
    for i in named + short:
        text = fields[i].text
        cost = len(fields[i].name) + len(text) + 4
        if "\n" in text or used + cost > budget:
            continue
        chosen.append(i)
        used += cost
    return sorted(chosen)


def split_record(record: Record, size: int, split_text: SplitText) -> list[str]:
    """Chunk texts of at most ``size`` characters (a JSON piece can exceed it by a few escape characters only
    when a value is cut as text and its escapes did not fit after several tries)."""
    if len(record.whole) <= size or not record.fields:
        return [record.whole]
    fields = record.fields
    keys = key_fields(fields, size // 3)
    key_set = set(keys)

    def render(indexes: Sequence[int]) -> str:
        return record.render([fields[i] for i in sorted({*keys, *indexes})])

    pieces: list[str] = []
    current: list[int] = []
    for index in range(len(fields)):
        if index in key_set:
            continue
        if current and len(render([*current, index])) <= size:
            current.append(index)
            continue
        if current:
            pieces.append(render(current))
            current = []
        if len(render([index])) <= size:
            current = [index]
        else:
            pieces.extend(_split_value(record, fields, keys, index, size, split_text))
    if current or not pieces:
        pieces.append(render(current))
    return pieces


def _split_value(
    record: Record, fields: Sequence[Field], keys: list[int], index: int, size: int, split_text: SplitText
) -> list[str]:
    """One field too long for a chunk, cut as text; each part is written with the key fields around it."""
    field = fields[index]

    def render(part: str, with_keys: bool) -> str:
        chosen = sorted({*keys, index}) if with_keys else [index]
        return record.render([replace(field, value=part) if i == index else fields[i] for i in chosen])

    with_keys = bool(keys)
    budget = size - len(render("", with_keys))
    if budget < size // 4:  # the keys would crowd out the text they are meant to label
        with_keys = False
        budget = size - len(render("", with_keys))
    budget = max(budget, 1)
    pieces: list[str] = []
    for _ in range(_MAX_RESPLITS):
        pieces = [render(part, with_keys) for part in split_text(field.text, budget)]
        if not pieces:
            break
        excess = max(len(p) for p in pieces) - size
        if excess <= 0 or budget <= 1:
            break
        budget = max(budget - excess, 1)  # JSON escapes (\n, \") made some part longer than its text
    return pieces
