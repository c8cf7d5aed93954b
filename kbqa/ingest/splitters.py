"""Documents → chunks. Lengths are in characters, never in an LLM's tokens, so chunking does not change with the model.

The recursive splitter tries paragraph, line, sentence (Chinese 。！？ and Western . ! ?), then clause boundaries
(；， ; ,), keeping the punctuation with the sentence it ends. The markdown mode first cuts at headings and records
the heading path. Optional Chinese title enhancement follows Chatchat 0.2's behaviour.

Structured text is cut along its structure: a table row or JSON object (a Document with a ``record``) between its
fields (see records.py), and a pipe table inside a text (``| a | b |`` lines from Markdown, Word or PowerPoint) is
kept whole when it fits a chunk, or else cut between rows (optionally repeating its header row in every piece). Chunks
shorter than ``min_chunk_chars`` are merged into a neighbour (see small_chunks.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

from kbqa.ingest.document import Document
from kbqa.ingest.line_boxes import narrow_line_boxes
from kbqa.ingest.records import split_record
from kbqa.ingest.small_chunks import merge_small_chunks

SENTENCE_SEPARATORS = [
    r"\n\n",
    r"\n",
    r"[。！？]+[”’」』）)]?",
    r"(?<=[.!?])\s",
    r"[；;]\s?",
    r"[，,、]\s?",
    r"\s",
    "",
]
MARKDOWN_HEADINGS = [("#", "h1"), ("##", "h2"), ("###", "h3"), ("####", "h4")]
MARKDOWN_EXTS = {".md", ".markdown"}


@dataclass(frozen=True, slots=True)
class SplitConfig:
    chunk_size: int = 250
    chunk_overlap: int = 50
    mode: Literal["recursive", "markdown_header"] = "recursive"
    zh_title_enhance: bool = False
    min_chunk_chars: int = 20
    table_header_repeat: bool = False

    @property
    def splitter_name(self) -> str:
        return "MarkdownHeaderTextSplitter" if self.mode == "markdown_header" else "ChineseRecursiveTextSplitter"


def _recursive(cfg: SplitConfig) -> RecursiveCharacterTextSplitter:
    overlap = min(cfg.chunk_overlap, max(cfg.chunk_size - 1, 0))
    return RecursiveCharacterTextSplitter(
        separators=SENTENCE_SEPARATORS,
        keep_separator="end",
        is_separator_regex=True,
        chunk_size=cfg.chunk_size,
        chunk_overlap=overlap,
        length_function=len,
        strip_whitespace=True,
    )


_BLANK_RUNS = re.compile(r"\n{3,}")


def _clean(text: str) -> str:
    return _BLANK_RUNS.sub("\n\n", text).strip()


def _markdown_sections(doc: Document) -> list[Document]:
    splitter = MarkdownHeaderTextSplitter(headers_to_split_on=MARKDOWN_HEADINGS, strip_headers=False)
    sections = []
    for part in splitter.split_text(doc.text):
        heading = " > ".join(part.metadata[key] for _, key in MARKDOWN_HEADINGS if key in part.metadata)
        meta = dict(doc.metadata)
        if heading:
            meta["heading"] = heading
        sections.append(Document(part.page_content, meta))
    return sections or [doc]


def split_documents(docs: list[Document], cfg: SplitConfig, ext: str = "") -> list[Document]:
    splitter = _recursive(cfg)
    chunks: list[Document] = []
    for doc in docs:
        pieces: list[Document] = []
        if doc.record is not None:
            pieces = _split_record_document(doc, cfg)
        else:
            markdown = cfg.mode == "markdown_header" and ext.lower() in MARKDOWN_EXTS
            for section in _markdown_sections(doc) if markdown else [doc]:
                text = _clean(section.text)
                pieces.extend(Document(piece, dict(section.metadata)) for piece in _split_text(text, cfg, splitter))
        merged = merge_small_chunks(pieces, cfg.min_chunk_chars)
        if "line_boxes" in doc.metadata:
            narrow_line_boxes(doc, merged)
        chunks.extend(merged)
    if cfg.zh_title_enhance:
        chunks = zh_title_enhance(chunks)
    return chunks


def _split_record_document(doc: Document, cfg: SplitConfig) -> list[Document]:
    assert doc.record is not None
    text = _clean(doc.text)
    if len(text) <= cfg.chunk_size:
        texts = [text] if text else []
    else:
        texts = [_clean(t) for t in split_record(doc.record, cfg.chunk_size, lambda t, n: _split_plain(t, n, cfg))]
    return [Document(t, dict(doc.metadata)) for t in texts if t]


def _split_plain(text: str, size: int, cfg: SplitConfig) -> list[str]:
    """``text`` cut into parts of at most ``size`` characters, with the configured overlap scaled to fit."""
    overlap = min(cfg.chunk_overlap, size // 4)
    parts = _recursive(SplitConfig(chunk_size=size, chunk_overlap=overlap)).split_text(text)
    return [p.strip() for p in parts if p.strip()]


def _split_text(text: str, cfg: SplitConfig, splitter: RecursiveCharacterTextSplitter) -> list[str]:
    if not text:
        return []
    if len(text) <= cfg.chunk_size:
        return [text]
    pieces: list[str] = []
    for block, is_table in _blocks(text):
        if is_table:
            pieces.extend(_split_table(block, cfg))
        elif len(block) <= cfg.chunk_size:
            pieces.append(block)
        else:
            pieces.extend(p.strip() for p in splitter.split_text(block) if p.strip())
    return pieces


# --- pipe tables inside text -------------------------------------------------------------------------------------

_TABLE_LINE = re.compile(r"^\s*\|.*\|\s*$")


def _blocks(text: str) -> list[tuple[str, bool]]:
    """The text as (block, is_table) in order; a table is two or more consecutive ``| ... |`` lines. Text without
    a table is one block, so it is split exactly as before tables were recognised."""
    lines = text.split("\n")
    blocks: list[tuple[str, bool]] = []
    start = 0
    index = 0
    while index < len(lines):
        if not _TABLE_LINE.match(lines[index]):
            index += 1
            continue
        end = index + 1
        while end < len(lines) and _TABLE_LINE.match(lines[end]):
            end += 1
        if end - index >= 2:
            blocks.append(("\n".join(lines[start:index]).strip(), False))
            blocks.append(("\n".join(lines[index:end]).strip(), True))
            start = end
        index = end
    if start < len(lines):
        blocks.append(("\n".join(lines[start:]).strip(), False))
    return [(block, is_table) for block, is_table in blocks if block]


_SEPARATOR_LINE = re.compile(r"^\s*\|(\s*:?-{3,}:?\s*\|)+\s*$")


def _table_header(lines: list[str], chunk_size: int) -> list[str]:
    """The header row and its ``---`` line when the table declares one and both leave room for a row."""
    if len(lines) > 2 and _SEPARATOR_LINE.match(lines[1]):
        header = lines[:2]
        if len("\n".join(header)) <= chunk_size // 2:
            return header
    return []


def _split_table(table: str, cfg: SplitConfig) -> list[str]:
    """A table that fits stays whole; a longer one is cut between rows, never inside one (a single row longer than a
    chunk is cut as text). With ``table_header_repeat`` a Markdown table's header row (with its ``---`` line) starts
    every piece, so a row in the fifth chunk still says which column is which.

    Only tables that declare a header get it repeated: loaders write Word and PowerPoint tables that way, and a bare
    run of ``| a | b |`` lines may have no header at all. It is off by default: the header's words ("port", "name")
    then match a question equally in every piece, and on the samples a row about another service outranked the
    paragraph that answered "Which port does the API server listen on?".
    """
    if len(table) <= cfg.chunk_size:
        return [table]
    lines = table.split("\n")
    header = _table_header(lines, cfg.chunk_size) if cfg.table_header_repeat else []
    pieces: list[str] = []
    current: list[str] = list(header)
    for line in lines[len(header) :]:
        if len(current) > len(header) and len("\n".join([*current, line])) > cfg.chunk_size:
            pieces.append("\n".join(current))
            current = list(header)
        if len("\n".join([*current, line])) <= cfg.chunk_size:
            current.append(line)
        else:
            pieces.extend(_split_plain(line, cfg.chunk_size, cfg))
    if len(current) > len(header):
        pieces.append("\n".join(current))
    return pieces


# --- Chinese title enhancement ----------------------------------------------------------------------------------

_ENDING_PUNCT = re.compile(r"[^\w\s]$")


def _non_alpha_ratio_too_high(text: str, threshold: float = 0.5) -> bool:
    """True when fewer than ``threshold`` of the non-space characters are letters (any script)."""
    chars = [c for c in text if not c.isspace()]
    if not chars:
        return True
    alpha = sum(1 for c in chars if c.isalpha())
    return alpha / len(chars) < threshold


def is_possible_title(text: str, max_len: int = 20) -> bool:
    """Chatchat's heuristic: short, no closing punctuation, mostly letters, a number in the first five characters
    (numbered headings like "1.2 安装" or "第3章")."""
    text = text.strip()
    if not text or "\n" in text or len(text) > max_len:
        return False
    if _ENDING_PUNCT.search(text):
        return False
    if text.isnumeric() or _non_alpha_ratio_too_high(text):
        return False
    return any(c.isnumeric() for c in text[:5])


def zh_title_enhance(chunks: list[Document]) -> list[Document]:
    title: str | None = None
    out: list[Document] = []
    for chunk in chunks:
        if is_possible_title(chunk.text):
            meta = dict(chunk.metadata, category="cn_Title")
            title = chunk.text.strip()
            out.append(Document(chunk.text, meta))
        elif title:
            out.append(Document(f"下文与({title})有关。{chunk.text}", dict(chunk.metadata)))
        else:
            out.append(chunk)
    return out
