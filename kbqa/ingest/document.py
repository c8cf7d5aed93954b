"""The unit every loader returns and every splitter consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kbqa.ingest.records import Record


@dataclass(slots=True)
class Document:
    """A piece of text with its provenance.

    ``metadata`` is JSON-serializable. Keys used across kbqa: ``page`` (1-based PDF page),
    ``sheet``/``row`` (spreadsheets), ``slide`` (presentations), ``heading`` (markdown/HTML section path),
    ``title`` (e-mail subject, e-book chapter), ``source`` (the file's path relative to the KB content folder,
    set by the pipeline, not by loaders).

    ``record`` is set by the tabular and JSON loaders: the fields behind ``text``, so the splitter can cut a long
    row between fields instead of inside one. It is never stored.
    """

    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    record: Record | None = None
