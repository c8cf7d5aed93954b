"""Each chunk of an OCR'd document keeps the boxes of its own lines only.

An OCR'd picture or page carries ``line_boxes``: one box per line of its text. After splitting, a chunk covering
lines 12-18 should point at those lines, not at the whole page (nor carry fifty boxes it does not need). A chunk is
located in the document text by searching its opening characters forward from the previous chunk's start (chunks
overlap, so the cursor only moves to where the last one began); one that cannot be found keeps every box.
"""

from __future__ import annotations

from bisect import bisect_right

from kbqa.ingest.document import Document

_PROBE_CHARS = 40


def narrow_line_boxes(source: Document, chunks: list[Document]) -> None:
    """Replace ``line_boxes`` in each chunk (made from ``source``, in order) with the boxes of the lines it covers."""
    boxes = source.metadata.get("line_boxes")
    lines = source.text.split("\n")
    if not boxes or len(boxes) != len(lines):
        return
    starts: list[int] = []
    offset = 0
    for line in lines:
        starts.append(offset)
        offset += len(line) + 1
    cursor = 0
    for chunk in chunks:
        probe = chunk.text[:_PROBE_CHARS]
        begin = source.text.find(probe, cursor)
        if begin < 0:
            continue
        cursor = begin
        end = begin + len(chunk.text)
        first = bisect_right(starts, begin) - 1
        last = bisect_right(starts, max(begin, end - 1)) - 1
        chunk.metadata = {**chunk.metadata, "line_boxes": boxes[first : last + 1]}
