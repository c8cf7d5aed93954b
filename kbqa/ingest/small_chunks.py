"""Merge chunks too short to mean anything into a neighbour.

A splitter's last cut often leaves a scrap: a closing clause, a lone heading, ``"id": 9}``. Such a scrap matches
almost any query about as well as nothing does, and then ranks first for off-topic questions, so every chunk of a
document shorter than the minimum joins the chunk before it (the tail of the same passage) or, when it starts a
new section or the document, the chunk after it. The merged chunk may exceed the chunk size by less than the
minimum. A document that is short as a whole (a one-line file, a short row, a page with one line) is left alone:
it is everything there is for its source, and merging across documents would lose its page or row.
"""

from __future__ import annotations

from typing import Any

from kbqa.ingest.document import Document


def merge_small_chunks(chunks: list[Document], min_chars: int) -> list[Document]:
    """``chunks`` are one document's, in order; returns them with every chunk shorter than ``min_chars`` merged."""
    if min_chars <= 0 or len(chunks) < 2:
        return chunks
    out = list(chunks)
    index = 0
    while index < len(out) and len(out) > 1:
        small = out[index]
        if len(small.text) >= min_chars:
            index += 1
            continue
        before = out[index - 1] if index > 0 else None
        after = out[index + 1] if index + 1 < len(out) else None
        if after is not None and (before is None or before.metadata != small.metadata):
            out[index + 1] = _join(small, after, after.metadata)
            del out[index]
        else:
            assert before is not None  # len(out) > 1, so a chunk without a successor has a predecessor
            out[index - 1] = _join(before, small, before.metadata)
            del out[index]
            index -= 1  # the grown chunk is checked again: it may still be short
    return out


def _join(first: Document, second: Document, metadata: dict[str, Any]) -> Document:
    # With chunk overlap the scrap is often already inside its neighbour: then it just goes.
    if first.text in second.text:
        return Document(second.text, dict(metadata))
    if second.text in first.text:
        return Document(first.text, dict(metadata))
    return Document(f"{first.text}\n{second.text}", dict(metadata))
