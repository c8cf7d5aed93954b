"""Detected text boxes → lines in reading order (top to bottom, left to right within a line).

Detectors find one box per run of text, so a line with a wide gap (a table row, a label and its value) comes back
as several boxes in no guaranteed order. Boxes whose vertical extents mostly overlap are one line; the pieces of a
line are joined left to right.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kbqa.ingest.ocr.engine import OCRLine


def _same_line(a: OCRLine, b: OCRLine) -> bool:
    overlap = min(a.box[3], b.box[3]) - max(a.box[1], b.box[1])
    shorter = min(a.box[3] - a.box[1], b.box[3] - b.box[1])
    return shorter > 0 and overlap >= 0.5 * shorter


def _is_cjk(char: str) -> bool:
    return "\u2e80" <= char <= "\u9fff" or "\uf900" <= char <= "\ufaff" or "\uff00" <= char <= "\uffef"


def _join(left: str, right: str) -> str:
    # Chinese is written without spaces; a space between two CJK pieces would be noise in the index.
    if left and right and _is_cjk(left[-1]) and _is_cjk(right[0]):
        return left + right
    return f"{left} {right}"


def in_reading_order(boxes: list[OCRLine]) -> list[OCRLine]:
    rows: list[list[OCRLine]] = []
    for box in sorted(boxes, key=lambda b: (b.box[1], b.box[0])):
        if rows and _same_line(rows[-1][-1], box):
            rows[-1].append(box)
        else:
            rows.append([box])
    lines = []
    for row in rows:
        row.sort(key=lambda b: b.box[0])
        text = row[0].text
        for piece in row[1:]:
            text = _join(text, piece.text)
        box = (
            min(b.box[0] for b in row),
            min(b.box[1] for b in row),
            max(b.box[2] for b in row),
            max(b.box[3] for b in row),
        )
        lines.append(type(row[0])(text, box, min(b.score for b in row)))
    return lines
