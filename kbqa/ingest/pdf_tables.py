"""Ruled tables on PDF pages → Markdown tables in the page text, with the rest of the page around them in order.

pypdf gives a table as a run of words in which rows and columns can no longer be told apart. pdfplumber finds tables
from their ruling lines and returns their cells; a page with such a table is rebuilt from pdfplumber's text lines
outside the tables and the tables as Markdown, ordered top to bottom. Pages without a ruled table keep pypdf's text.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from kbqa.ingest.markdown_table import markdown_table

# A rectangle (``re``) or a line segment (``l``) in a content stream: a page without either has no ruled table, and
# pdfplumber's layout analysis (tens of times slower than pypdf's text extraction) is skipped for it.
_PATH_OPERATOR = re.compile(rb"\d\s+(?:re|l)\s")


def may_hold_ruled_table(page: Any) -> bool:
    """Whether a pypdf page draws any rectangle or line at all."""
    contents = page.get_contents()
    return contents is not None and _PATH_OPERATOR.search(contents.get_data()) is not None


def _outside(page: Any, boxes: list[tuple[float, float, float, float]]) -> Any:
    """The page without the objects whose centre lies in one of ``boxes`` (a character touching a table's edge
    belongs to the text beside it)."""

    def keep(obj: dict[str, Any]) -> bool:
        if "x0" not in obj or "top" not in obj:
            return True
        x, y = (obj["x0"] + obj["x1"]) / 2, (obj["top"] + obj["bottom"]) / 2
        return not any(x0 <= x <= x1 and top <= y <= bottom for x0, top, x1, bottom in boxes)

    return page.filter(keep)


class PDFTables:
    """Opens the file with pdfplumber once, on the first page asked about."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._pdf: Any = None

    def page_text(self, number: int) -> str | None:
        """Page ``number`` (1-based) with its tables as Markdown, or None when it has no ruled table."""
        import pdfplumber

        if self._pdf is None:
            self._pdf = pdfplumber.open(self._path)
        page = self._pdf.pages[number - 1]
        try:
            tables = [table for table in page.find_tables() if len(table.rows) >= 2]
            if not tables:
                return None
            blocks: list[tuple[float, str]] = [(table.bbox[1], markdown_table(table.extract())) for table in tables]
            outside = _outside(page, [table.bbox for table in tables])
            blocks.extend((line["top"], line["text"]) for line in outside.extract_text_lines())
            blocks.sort(key=lambda block: block[0])
            return "\n".join(text for _top, text in blocks if text.strip())
        finally:
            page.close()

    def close(self) -> None:
        if self._pdf is not None:
            self._pdf.close()
