"""In-memory BM25 over one knowledge base's keyword tokens: the searchable snapshot of its FTS5 table.

Why not query FTS5 directly: SQLite's ``bm25()`` costs about a microsecond per matching row (a doc-size lookup and a
walk over every query phrase), 4-7 ms per query over 100,000 chunks, where scoring posting arrays with numpy takes a
fraction of a millisecond. The FTS5 table stays the persisted keyword index, written in the chunks' own transaction;
this snapshot is built from its stored tokens when a KB's index is opened and then updated by the writer after each
commit, exactly like the in-memory vector index.

A snapshot is immutable, so searches read it without a lock. It is a list of segments (one per batch of added chunks,
merged when small ones pile up, as Lucene does) with a per-segment "alive" mask for deleted chunks. Scores follow
FTS5's ``bm25()``: k1 = 1.2, b = 0.75, idf = ln((N - n + 0.5) / (n + 0.5)) floored at 1e-6, with N, n and the average
length counted over live chunks only, so results match FTS5's ranking.
"""

from __future__ import annotations

import io
import math
import sqlite3
import threading
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain

import numpy as np

K1 = 1.2
B = 0.75
# A new segment is merged into the previous one while it is at least this fraction of its size: a handful of
# segments of geometrically growing size, so each chunk is re-merged O(log n) times.
_MERGE_RATIO = 0.25
_MAX_SEGMENTS = 8
# Segments are not merged beyond this many chunks (a merge holds its postings twice), nor built from more rows.
_MAX_SEGMENT_DOCS = 250_000
_BUILD_PAGE = 25_000

# Words resolved to index terms: more distinct words than this and the cache starts again.
_CACHE_LIMIT = 200_000


_WORDS_TABLE = "CREATE VIRTUAL TABLE w USING fts5(word, tokenize='porter unicode61')"


class _Fts5Terms:
    """word -> its index terms, exactly as the KB's FTS5 table makes them (``porter unicode61``: case and Latin
    diacritics folded, Porter-stemmed with the "logi"/"bli" rules of Porter's own C version, split on punctuation).
    SQLite's tokenizer is not exposed to Python, so distinct words go through an in-memory FTS5 table once and are
    read back from its fts5vocab view; the results are cached."""

    def __init__(self) -> None:
        self._con = sqlite3.connect(":memory:", check_same_thread=False)
        self._con.execute(_WORDS_TABLE)
        self._con.execute("CREATE VIRTUAL TABLE v USING fts5vocab(w, 'instance')")
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[str, ...]] = {}

    def resolve(self, words: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """A dict holding at least ``words`` (the cache; a reset replaces it rather than emptying it, so a dict
        returned earlier keeps its words)."""
        wanted = set(words)
        cache = self._cache
        if all(w in cache for w in wanted):
            return cache
        with self._lock:
            cache = self._cache
            unknown = [w for w in wanted if w not in cache]
            if len(cache) + len(unknown) > _CACHE_LIMIT:
                cache = self._cache = {}
                unknown = list(wanted)
            with self._con:
                self._con.executemany("INSERT INTO w(rowid, word) VALUES (?, ?)", enumerate(unknown))
                rows = self._con.execute("SELECT doc, term FROM v ORDER BY doc, offset").fetchall()
                if len(unknown) > 100:
                    # after a big batch, DELETE leaves tombstones every later vocabulary scan walks (11 ms per
                    # query after a 20,000-chunk build); a fresh table costs 0.3 ms, too much for each query
                    self._con.execute("DROP TABLE w")
                    self._con.execute(_WORDS_TABLE)
                else:
                    self._con.execute("DELETE FROM w")
            found: dict[int, tuple[str, ...]] = {}
            for doc, term in rows:
                found[doc] = (*found[doc], term) if doc in found else (term,)
            for n, word in enumerate(unknown):
                cache[word] = found.get(n, ())
            return cache


@lru_cache(maxsize=1)
def _fts5_terms() -> _Fts5Terms:
    return _Fts5Terms()  # on first use, not at import: opening SQLite is a side effect


def terms(tokens: str) -> list[str]:
    """The index terms of a stored token string (``kbqa.ingest.keywords.index_text`` output), in order."""
    words = tokens.split()
    cache = _fts5_terms().resolve(words)
    return [t for w in words for t in cache[w]]


@dataclass(frozen=True, slots=True)
class _Segment:
    """Term-major postings of a batch of chunks. ``starts[t]:starts[t + 1]`` are term ``t``'s postings."""

    vocab: dict[str, int]
    starts: np.ndarray  # int64, len(vocab) + 1
    docs: np.ndarray  # int32 local document number per posting
    tfs: np.ndarray  # float32 term frequency per posting
    ids: np.ndarray  # int64 chunk id per local document
    lengths: np.ndarray  # float32 number of terms per local document

    @staticmethod
    def build(rows: Sequence[tuple[int, str]]) -> _Segment:
        docs = [tokens.split() for _, tokens in rows]
        distinct = list({w for words in docs for w in words})
        cache = _fts5_terms().resolve(distinct)
        vocab: dict[str, int] = {}
        # Each distinct word has 0..n terms (usually 1): a CSR table word -> term ids, so the per-token work below
        # is numpy indexing rather than Python.
        per_word = np.fromiter((len(cache[w]) for w in distinct), np.int64, len(distinct))
        word_start = np.concatenate([[0], np.cumsum(per_word)])
        word_terms = np.fromiter(
            (vocab.setdefault(t, len(vocab)) for w in distinct for t in cache[w]), np.int64, int(word_start[-1])
        )
        index_of = {w: i for i, w in enumerate(distinct)}
        words_per_doc = np.fromiter(map(len, docs), np.int64, len(docs))
        tokens = np.fromiter(
            chain.from_iterable(map(index_of.__getitem__, words) for words in docs), np.int64, int(words_per_doc.sum())
        )
        reps = per_word[tokens]
        token_word = np.repeat(tokens, reps)
        within = np.arange(len(token_word), dtype=np.int64) - np.repeat(np.cumsum(reps) - reps, reps)
        term_of = word_terms[word_start[token_word] + within]
        doc_of = np.repeat(np.repeat(np.arange(len(rows), dtype=np.int64), words_per_doc), reps)
        return _Segment.from_pairs(
            vocab,
            term_of,
            doc_of,
            np.ones(len(term_of), dtype=np.float32),
            np.asarray([i for i, _ in rows], dtype=np.int64),
            np.bincount(doc_of, minlength=len(rows)).astype(np.float32),
        )

    @staticmethod
    def from_pairs(
        vocab: dict[str, int],
        term_of: np.ndarray,
        doc_of: np.ndarray,
        weight: np.ndarray,
        ids: np.ndarray,
        lengths: np.ndarray,
    ) -> _Segment:
        """Postings from (term, doc, count) triples in any order; repeated (term, doc) pairs are summed."""
        n_docs = max(len(ids), 1)
        key = term_of * n_docs + doc_of
        uniq, inverse = np.unique(key, return_inverse=True)
        tfs = np.bincount(inverse, weights=weight, minlength=len(uniq)).astype(np.float32)
        term_sorted = uniq // n_docs
        starts = np.searchsorted(term_sorted, np.arange(len(vocab) + 1, dtype=np.int64)).astype(np.int64)
        return _Segment(vocab, starts, (uniq % n_docs).astype(np.int32), tfs, ids, lengths)

    @property
    def size(self) -> int:
        return len(self.ids)

    def postings(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        t = self.vocab.get(term)
        if t is None:
            return None
        lo, hi = self.starts[t], self.starts[t + 1]
        return self.docs[lo:hi], self.tfs[lo:hi]


def _merge(parts: Sequence[tuple[_Segment, np.ndarray]]) -> _Segment:
    """One segment holding the live documents of ``parts`` (segment, alive mask); deleted ones are dropped.

    Each part's postings are sorted by (term, doc) and the parts' documents are renumbered in order, so a stable sort
    by term alone gives the merged (term, doc) order: no (term, doc) pair repeats and nothing needs summing."""
    vocab: dict[str, int] = {}
    term_of, doc_of, tfs, ids, lengths = [], [], [], [], []
    base = 0
    for seg, alive in parts:
        remap_term = np.fromiter((vocab.setdefault(t, len(vocab)) for t in seg.vocab), np.int32, len(seg.vocab))
        new_doc = (np.cumsum(alive, dtype=np.int64) - 1 + base).astype(np.int32)
        keep = alive[seg.docs]
        term_of.append(np.repeat(remap_term, np.diff(seg.starts))[keep])
        doc_of.append(new_doc[seg.docs[keep]])
        tfs.append(seg.tfs[keep])
        ids.append(seg.ids[alive])
        lengths.append(seg.lengths[alive])
        base += int(alive.sum())
    terms_all = np.concatenate(term_of)
    order = np.argsort(terms_all, kind="stable")
    starts = np.searchsorted(terms_all[order], np.arange(len(vocab) + 1, dtype=np.int32)).astype(np.int64)
    return _Segment(
        vocab,
        starts,
        np.concatenate(doc_of)[order],
        np.concatenate(tfs)[order],
        np.concatenate(ids),
        np.concatenate(lengths),
    )


class BM25Index:
    """An immutable BM25 snapshot; :meth:`updated` returns the next one."""

    __slots__ = ("_alive", "_live", "_segments", "_total_len")

    def __init__(self, segments: Sequence[_Segment] = (), alive: Sequence[np.ndarray] | None = None) -> None:
        self._segments = tuple(segments)
        self._alive = tuple(alive) if alive is not None else tuple(np.ones(s.size, bool) for s in self._segments)
        self._live = sum(int(a.sum()) for a in self._alive)
        self._total_len = sum(float(s.lengths[a].sum()) for s, a in zip(self._segments, self._alive, strict=True))

    @classmethod
    def build(cls, rows: Iterable[tuple[int, str]]) -> BM25Index:
        """A snapshot of ``rows`` (chunk id, stored tokens), built a page at a time: building holds the words of one
        page as Python strings, so memory stays bounded whatever the KB's size."""
        parts: list[tuple[_Segment, np.ndarray]] = []
        page: list[tuple[int, str]] = []
        for row in chain(rows, [None]):
            if row is not None:
                page.append(row)
                if len(page) < _BUILD_PAGE:
                    continue
            if page:
                seg = _Segment.build(page)
                parts = cls._compact([*parts, (seg, np.ones(seg.size, bool))])
                page = []
        return cls([s for s, _ in parts], [a for _, a in parts])

    def __len__(self) -> int:
        return self._live

    _FIELDS = ("starts", "docs", "tfs", "ids", "lengths")

    def to_bytes(self, generation: int) -> bytes:
        """An .npz image (no pickled objects) recording the KB generation it matches."""
        arrays: dict[str, np.ndarray] = {"generation": np.asarray([generation], np.int64)}
        for n, (seg, alive) in enumerate(zip(self._segments, self._alive, strict=True)):
            # terms never hold a newline: FTS5's unicode61 tokenizer splits on whitespace
            arrays[f"s{n}_vocab"] = np.frombuffer("\n".join(seg.vocab).encode(), np.uint8)
            arrays[f"s{n}_alive"] = alive
            for name in self._FIELDS:
                arrays[f"s{n}_{name}"] = getattr(seg, name)
        out = io.BytesIO()
        np.savez(out, **arrays)
        return out.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> tuple[BM25Index, int]:
        """The snapshot and generation saved by :meth:`to_bytes`; ValueError when the data is not one."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                generation = int(npz["generation"][0])
                segments, alive = [], []
                n = 0
                while f"s{n}_vocab" in npz:
                    raw = npz[f"s{n}_vocab"].tobytes().decode()
                    terms_list = raw.split("\n") if raw else []
                    seg = _Segment({t: i for i, t in enumerate(terms_list)}, *(npz[f"s{n}_{f}"] for f in cls._FIELDS))
                    if len(seg.starts) != len(terms_list) + 1 or len(npz[f"s{n}_alive"]) != seg.size:
                        raise ValueError("inconsistent segment")
                    segments.append(seg)
                    alive.append(npz[f"s{n}_alive"].astype(bool))
                    n += 1
        except (OSError, KeyError, IndexError, UnicodeDecodeError, EOFError, zipfile.BadZipFile) as exc:
            raise ValueError(f"not a saved BM25 snapshot: {exc}") from exc
        return cls(segments, alive), generation

    @property
    def segment_count(self) -> int:
        return len(self._segments)

    def updated(self, added: Sequence[tuple[int, str]] = (), removed: Iterable[int] = ()) -> BM25Index:
        """The snapshot after deleting ``removed`` chunk ids and adding ``added`` (chunk id, token string) rows."""
        segments = list(self._segments)
        alive = list(self._alive)
        gone = np.fromiter(removed, np.int64)
        if len(gone):
            for n, seg in enumerate(segments):
                hit = np.isin(seg.ids, gone)
                if hit.any():
                    alive[n] = alive[n] & ~hit  # a new mask: the current snapshot keeps its own
        if added:
            segments.append(_Segment.build(added))
            alive.append(np.ones(len(added), bool))
        parts = self._compact([(s, a) for s, a in zip(segments, alive, strict=True) if a.any()])
        return BM25Index([s for s, _ in parts], [a for _, a in parts])

    @staticmethod
    def _compact(parts: list[tuple[_Segment, np.ndarray]]) -> list[tuple[_Segment, np.ndarray]]:
        while len(parts) > 1:
            last, before = int(parts[-1][1].sum()), int(parts[-2][1].sum())
            if last + before > _MAX_SEGMENT_DOCS:  # big segments stay as they are: merging them costs memory
                break
            if len(parts) <= _MAX_SEGMENTS and last < _MERGE_RATIO * before:
                break
            merged = _merge(parts[-2:])
            parts[-2:] = [(merged, np.ones(merged.size, bool))]
        compacted = []
        for seg, alive in parts:
            if alive.sum() < 0.5 * seg.size:  # mostly deleted chunks: they cost search time for nothing
                seg = _merge([(seg, alive)])
                alive = np.ones(seg.size, bool)
            compacted.append((seg, alive))
        return compacted

    def search(
        self, query_tokens: Sequence[str], limit: int, allowed: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """(chunk id, BM25 score; higher is better) of the best ``limit`` live chunks, like FTS5's OR query."""
        if not self._live or limit <= 0:
            return []
        wanted = list(dict.fromkeys(terms(" ".join(query_tokens))))
        avgdl = self._total_len / self._live
        acc: list[np.ndarray | None] = [None] * len(self._segments)
        for term in wanted:
            found = [(n, seg.postings(term)) for n, seg in enumerate(self._segments)]
            found = [(n, p) for n, p in found if p is not None]
            if not found:
                continue
            df = sum(int(self._alive[n][docs].sum()) for n, (docs, _) in found)
            if df == 0:
                continue
            idf = math.log((self._live - df + 0.5) / (df + 0.5))
            idf = idf if idf > 0 else 1e-6
            for n, (docs, tfs) in found:
                seg = self._segments[n]
                norm = K1 * (1 - B + B * seg.lengths[docs] / avgdl)
                part = np.bincount(docs, weights=idf * tfs * (K1 + 1) / (tfs + norm), minlength=seg.size)
                acc[n] = part if acc[n] is None else acc[n] + part
        ids_parts, score_parts = [], []
        for n, seg in enumerate(self._segments):
            scores = acc[n]
            if scores is None:
                continue
            hit = np.flatnonzero((scores > 0) & self._alive[n])
            chunk_ids = seg.ids[hit]
            if allowed is not None:
                keep = np.isin(chunk_ids, allowed)
                hit, chunk_ids = hit[keep], chunk_ids[keep]
            ids_parts.append(chunk_ids)
            score_parts.append(scores[hit])
        if not ids_parts:
            return []
        ids = np.concatenate(ids_parts)
        scores = np.concatenate(score_parts)
        if len(ids) > limit:
            top = np.argpartition(-scores, limit - 1)[:limit]
            ids, scores = ids[top], scores[top]
        order = np.lexsort((ids, -scores))
        return [(int(ids[i]), float(scores[i])) for i in order]
