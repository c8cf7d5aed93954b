"""Documents → chunks. Lengths are in characters, never in an LLM's tokens, so chunking does not change with the model.

The recursive splitter tries paragraph, line, sentence (Chinese 。！？ and Western . ! ?), then clause boundaries
(；， ; ,), keeping the punctuation with the sentence it ends. The markdown mode first cuts at headings and records
the heading path. Optional Chinese title enhancement follows Chatchat 0.2's behaviour.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

from kbqa.ingest.document import Document

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
        sections = _markdown_sections(doc) if cfg.mode == "markdown_header" and ext.lower() in MARKDOWN_EXTS else [doc]
        for section in sections:
            text = _clean(section.text)
            if not text:
                continue
            if len(text) <= cfg.chunk_size:
                chunks.append(Document(text, dict(section.metadata)))
                continue
            for piece in splitter.split_text(text):
                piece = piece.strip()
                if piece:
                    chunks.append(Document(piece, dict(section.metadata)))
    if cfg.zh_title_enhance:
        chunks = zh_title_enhance(chunks)
    return chunks


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
