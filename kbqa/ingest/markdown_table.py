"""Rows of cells → a Markdown table (header row, ``---`` separator, one line per row).

Tables from Word, PowerPoint and PDF share this form so the splitter can recognise them, keep rows whole and repeat
the header row in every chunk of a long table (see splitters.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def cell_markdown(value: str | None) -> str:
    """One cell on one line: whitespace (line breaks inside a cell) collapsed, ``|`` escaped."""
    return " ".join((value or "").split()).replace("|", "\\|")


def markdown_table(rows: Iterable[Sequence[str | None]]) -> str:
    """The first non-empty row is the header; short rows are padded to the widest row. Empty input gives ``""``."""
    cleaned = [[cell_markdown(cell) for cell in row] for row in rows]
    cleaned = [row for row in cleaned if any(row)]
    if not cleaned:
        return ""
    width = max(len(row) for row in cleaned)
    lines = []
    for index, row in enumerate(cleaned):
        padded = row + [""] * (width - len(row))
        lines.append("| " + " | ".join(padded) + " |")
        if index == 0:
            lines.append("|" + "---|" * width)
    return "\n".join(lines)
