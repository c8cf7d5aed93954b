"""Text → keyword tokens for the BM25 index, the same way for chunks and for queries.

Chinese (and other CJK) runs are word-segmented with jieba, so a word inside a sentence is found; Latin text is
split on non-word characters and lower-cased (the index adds Porter stemming). Stop words and punctuation are dropped.
"""

from __future__ import annotations

import logging
import re
import threading
from functools import lru_cache

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]+")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)

EN_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "our",
        "s",
        "so",
        "such",
        "t",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
    ]
)
ZH_STOP = frozenset(
    [
        "的",
        "了",
        "是",
        "在",
        "和",
        "与",
        "及",
        "或",
        "也",
        "都",
        "而",
        "就",
        "被",
        "把",
        "对",
        "等",
        "之",
        "其",
        "这",
        "那",
        "个",
        "吗",
        "呢",
        "吧",
        "啊",
        "哪些",
        "什么",
        "怎么",
        "如何",
        "一个",
        "我们",
        "你们",
    ]
)

_jieba_lock = threading.Lock()
_jieba_ready = False


def _jieba():  # type: ignore[no-untyped-def]
    global _jieba_ready
    import jieba

    if not _jieba_ready:
        with _jieba_lock:
            if not _jieba_ready:
                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba_ready = True
    return jieba


@lru_cache(maxsize=4096)
def _segment(run: str) -> tuple[str, ...]:
    return tuple(w for w in _jieba().lcut(run, HMM=True) if w.strip())


def tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    for match in _CJK.finditer(text):
        tokens.extend(_latin(text[pos : match.start()]))
        tokens.extend(w for w in _segment(match.group()) if w not in ZH_STOP)
        pos = match.end()
    tokens.extend(_latin(text[pos:]))
    return tokens


def _latin(text: str) -> list[str]:
    return [w for w in (m.group().lower().replace("’", "'") for m in _WORD.finditer(text)) if w not in EN_STOP]


def index_text(text: str) -> str:
    """The string stored in the full-text index: tokens separated by spaces."""
    return " ".join(tokenize(text))


def match_query(text: str) -> str | None:
    """An FTS5 MATCH expression (any token, BM25-ranked), or None when the text has no searchable token."""
    return match_tokens(tokenize(text))


def match_tokens(tokens: list[str]) -> str | None:
    """The FTS5 MATCH expression of already tokenized text."""
    unique = list(dict.fromkeys(tokens))
    if not unique:
        return None
    return " OR ".join('"' + tok.replace('"', '""') + '"' for tok in unique)
